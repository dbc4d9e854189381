# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this file
# What every script in scripts/ starts with; sourced, not run:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets ROOT (the repository, also the working directory from here on), CI_MODE (1 when CI is "true"
# or "1"), LOCKED (cargo's --locked in CI: Cargo.lock must be up to date) and TARGET_DIR (cargo's
# target dir), and defines log and die, which prefix their message with the calling script's name.

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
