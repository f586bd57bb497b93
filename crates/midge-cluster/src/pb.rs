//! The protobuf types generated from `proto/midge.proto` (package `midge.v1`).
#![allow(missing_docs)]
#![allow(clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/midge.v1.rs"));
