//! The first Rust example of `core/README.md` is a copy of the crate's doctest in `src/lib.rs`
//! (which compiles and runs it); this keeps the copy from drifting.

/// The lines of the first fenced block whose info string starts with `rust`, without rustdoc's
/// hidden lines (`# …`).
fn first_rust_block(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut block = Vec::new();
    // `None` outside a fence, `Some(is_rust)` inside one.
    let mut fence: Option<bool> = None;
    for line in lines {
        match (fence, line.strip_prefix("```")) {
            (None, Some(info)) => fence = Some(info.is_empty() || info.starts_with("rust")),
            (Some(true), Some(_)) => break,
            (Some(false), Some(_)) => fence = None,
            (Some(true), None) if line != "#" && !line.starts_with("# ") => block.push(line),
            _ => {}
        }
    }
    block
}

#[test]
fn readme_example_is_the_crate_doctest() {
    let readme = first_rust_block(include_str!("../README.md").lines().map(str::to_owned));
    let doc = include_str!("../src/lib.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l).to_owned());
    let doctest = first_rust_block(doc);
    assert!(readme.len() > 10, "no Rust example found in core/README.md");
    assert_eq!(readme, doctest, "core/README.md's example differs from the doctest in core/src/lib.rs");
}
