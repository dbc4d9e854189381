//! Compiles `proto/*.proto` with protox (pure Rust, no `protoc` binary) and prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/wire.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
