//! Generates the protobuf types of `proto/midge.proto` and the gRPC service of
//! `proto/cluster.proto` with prost and tonic, parsed by protox (pure Rust, so no system
//! `protoc` is needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "../../proto";
    let files = ["../../proto/midge.proto", "../../proto/cluster.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, [proto_dir])?;
    let mut config = prost_build::Config::new();
    // Payloads and correlation data stay reference counted, as in midge-codec.
    config.bytes(["."]);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
