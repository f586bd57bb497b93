//! Generates the protobuf types of `proto/midge.proto` with prost, parsed by protox (pure Rust,
//! so no system `protoc` is needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "../../proto";
    let file = "../../proto/midge.proto";
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([file], [proto_dir])?;
    prost_build::Config::new()
        // Payloads and correlation data stay reference counted, as in midge-codec.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
