//! midge-server: the I/O shell around the broker core.
#![forbid(unsafe_code)]
