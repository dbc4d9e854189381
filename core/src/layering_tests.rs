//! Guards the layering: `error.rs`, `limits.rs` and `crypto/` are the bottom layer and use
//! nothing of the crate but each other, so no import cycle can form through them. Doc comments may
//! still link upwards (they are not dependencies).

const BOTTOM: &[(&str, &str)] = &[
    ("error.rs", include_str!("error.rs")),
    ("limits.rs", include_str!("limits.rs")),
    ("crypto/mod.rs", include_str!("crypto/mod.rs")),
    ("crypto/aead.rs", include_str!("crypto/aead.rs")),
    ("crypto/kdf.rs", include_str!("crypto/kdf.rs")),
    ("crypto/kem.rs", include_str!("crypto/kem.rs")),
    ("crypto/keys.rs", include_str!("crypto/keys.rs")),
];
const ALLOWED: &[&str] = &["crate::crypto", "crate::error", "crate::limits"];

#[test]
fn error_and_crypto_depend_on_nothing_above_them() {
    let mut offending = Vec::new();
    for (file, source) in BOTTOM {
        for (n, line) in source.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let path = &line[at..];
                // `crate::crypto` but not `crate::cryptography`: the allowed name must end there.
                let allowed = ALLOWED.iter().any(|a| {
                    path.strip_prefix(a)
                        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
                });
                if !allowed {
                    offending.push(format!("src/{file}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offending.is_empty(), "the bottom layer uses modules above it:\n{}", offending.join("\n"));
}

#[test]
fn the_guard_sees_the_files() {
    // A guard that reads nothing would pass vacuously.
    assert!(BOTTOM.iter().all(|(_, source)| !source.is_empty()));
    assert!(BOTTOM.iter().any(|(_, source)| source.contains("use crate::error::")));
}
