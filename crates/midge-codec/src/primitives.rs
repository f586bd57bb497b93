//! Wire primitives: variable byte integers, two-byte integers, UTF-8 strings, binary data.
