//! Crate-level tests: openraft's storage suite against every backend, and node behaviour.
mod fixtures;
mod grpc_cluster;
mod link_stream;
mod node_mem;
mod node_rocks;
mod suite;
