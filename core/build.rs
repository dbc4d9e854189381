//! Compiles `proto/*.proto` with protox (pure Rust, no `protoc` binary) and prost-build.
//!
//! Types that hold secrets (storage formats, attachment pointers, sender-key distributions, link
//! approvals) wipe themselves on drop and get a redacted `Debug` written by hand, instead of prost's,
//! which would print key bytes.

use std::path::PathBuf;

/// Messages that carry key material.
const SECRET_TYPES: &[&str] = &[
    ".hush.storage",
    ".hush.content.AttachmentPointer",
    ".hush.content.DeviceLink",
    ".hush.content.SenderKeyDistribution",
    ".hush.content.SentSync",
    ".hush.group.SenderKeyDistribution",
    ".hush.group.GroupEpochKeys",
    ".hush.link.LinkApproval",
    ".hush.link.LinkRequest",
    ".hush.client",
];

fn config() -> prost_build::Config {
    let mut config = prost_build::Config::new();
    for path in SECRET_TYPES {
        config.type_attribute(path, "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]");
    }
    // One call: a second `skip_debug` would replace the first list.
    config.skip_debug(SECRET_TYPES);
    config
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every .proto in proto/, in a stable order, so adding a format needs no edit here.
    let mut protos: Vec<PathBuf> = std::fs::read_dir("proto")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    println!("cargo:rerun-if-changed=proto");
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    // wire.proto first, on its own; then the rest, which may import it and must then refer to its
    // types where they live in the crate (an extern path also stops prost generating them again).
    let (wire, rest): (Vec<_>, Vec<_>) = protos.into_iter().partition(|p| p.ends_with("wire.proto"));
    config().compile_fds(protox::compile(&wire, ["proto"])?)?;
    config().extern_path(".hush.wire", "crate::wire::proto").compile_fds(protox::compile(&rest, ["proto"])?)?;
    Ok(())
}
