//! What every bench shares: criterion settings and reading criterion's results back to print
//! ratios against the peer measured in the same run.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where criterion writes its results, found the way criterion finds it.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let metadata = std::env::var_os("CARGO").and_then(|cargo| {
        std::process::Command::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]).output().ok()
    });
    metadata
        .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok())
        .and_then(|v| v.get("target_directory")?.as_str().map(PathBuf::from))
        .map_or_else(|| PathBuf::from("target/criterion"), |t| t.join("criterion"))
}

/// Criterion's directory name for a group or bench name.
pub fn dir_name(name: &str) -> String {
    let mut s = name.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Mean time in ns of a bench that ran in this process (older results are ignored).
pub fn mean_ns(dir: &Path, started: SystemTime, group: &str, bench: &str) -> Option<f64> {
    let path = dir.join(dir_name(group)).join(dir_name(bench)).join("new").join("estimates.json");
    if std::fs::metadata(&path).and_then(|m| m.modified()).ok()? < started {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v.get("mean")?.get("point_estimate")?.as_f64()
}

/// A duration in ns, human-readable.
pub fn fmt_ns(ns: Option<f64>) -> String {
    match ns {
        None => "—".into(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        Some(ns) => format!("{ns:.0} ns"),
    }
}
