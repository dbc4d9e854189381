# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this file
# What every script in scripts/ starts with; sourced, not run:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets ROOT (the repository, also the working directory from here on), CI_MODE (1 when CI is "true"
# or "1"), LOCKED (cargo's --locked in CI: Cargo.lock must be up to date) and TARGET_DIR (cargo's
# target dir), and defines log and die, which prefix their message with the calling script's name,
# and build_native (the workspace's native build, shared by the scripts that need a binary).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

CI_MODE=0
LOCKED=()
if [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then
    CI_MODE=1
    LOCKED=(--locked)
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

SCRIPT_NAME="$(basename "${BASH_SOURCE[1]:-lib.sh}")"

log() { echo "$SCRIPT_NAME: $*"; }
die() {
    echo "$SCRIPT_NAME: $*" >&2
    exit 1
}

# build_native: the workspace's native libraries and binaries (target/debug/hush-relay, libhush_ffi.so,
# uniffi-bindgen, ...), built in the same feature resolution as `cargo test --workspace` (--examples
# brings in the dev-dependencies' features, as the tests do). After the test step this compiles
# nothing again, where `cargo build -p X` would resolve X's features on their own (without the
# dev-dependencies') and rebuild dozens of crates, hush-core included.
build_native() {
    cargo build "${LOCKED[@]}" --workspace --lib --bins --examples
}
