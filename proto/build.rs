//! Generates the outpost.v1 Rust code from `proto/outpost.proto` with a
//! vendored `protoc`, so building needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts are single-threaded; the env var is read by
    // prost-build below.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/outpost.proto");
    println!("cargo:rerun-if-changed=proto/prometheus_remote.proto");
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_protos(
            &["proto/outpost.proto", "proto/prometheus_remote.proto"],
            &["proto"],
        )?;
    Ok(())
}
