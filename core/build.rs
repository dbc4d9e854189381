//! Compiles `proto/*.proto` with protox (pure Rust, no `protoc` binary) and prost-build.
//!
//! The storage types (`hush.storage`) hold secrets: they wipe themselves on drop and get a redacted
//! `Debug` (written by hand in `src/wire.rs`) instead of prost's, which would print key bytes.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every .proto in proto/, in a stable order, so adding a format needs no edit here.
    let mut protos = std::fs::read_dir("proto")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect::<Vec<_>>();
    protos.sort();
    println!("cargo:rerun-if-changed=proto");
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let fds = protox::compile(&protos, ["proto"])?;
    prost_build::Config::new()
        .type_attribute(".hush.storage", "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]")
        // Payload parts that carry secrets (attachment keys, linked-device and sender-key payloads).
        .type_attribute(".hush.content.AttachmentPointer", "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]")
        .type_attribute(".hush.content.DeviceLink", "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]")
        .type_attribute(
            ".hush.content.SenderKeyDistribution",
            "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]",
        )
        .type_attribute(".hush.group.SenderKeyDistribution", "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]")
        .type_attribute(".hush.link.LinkApproval", "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]")
        // One call: a second `skip_debug` would replace the first list.
        .skip_debug([
            ".hush.storage",
            ".hush.content.AttachmentPointer",
            ".hush.content.DeviceLink",
            ".hush.content.SenderKeyDistribution",
            ".hush.group.SenderKeyDistribution",
            ".hush.link.LinkApproval",
        ])
        .compile_fds(fds)?;
    Ok(())
}
