#!/usr/bin/env bash
# The uniffi bindings of hush-ffi: builds the native library once, generates the Python, Kotlin and
# Swift bindings from it (uniffi-bindgen in library mode), and tests them.
#
# Usage: scripts/bindings.sh [COMMAND]
#   all (default)  build, generate, python, kotlin, swift-check
#   build          build_native (scripts/lib.sh): the workspace's libraries and binaries, hush-ffi,
#                  uniffi-bindgen and the relay the Python client tests talk to among them, in the feature
#                  resolution of `cargo test --workspace`, so nothing recompiles after the test step
#                  (debug profile; shares the workspace target/)
#   generate       Python into bindings/python/src/hush/ (with the native library beside it) and Kotlin
#                  into ffi-kotlin/target/generated-sources/uniffi/ (neither committed)
#   python         pip-installs bindings/python into target/py-venv (with pytest) and runs its pytest tests
#   kotlin         mvn -B -q test in ffi-kotlin/ (JUnit 5; JNA loads the library from cargo's target dir)
#   swift-check    regenerates the Swift and fails if it differs from what ffi-swift/ commits
#   swift-write    regenerates the Swift into ffi-swift/ (commit the result)
#
# Environment:
#   CI=true           cargo --locked; a missing mvn or python3 venv is an error (locally: skipped with a note)
#   CARGO_TARGET_DIR  where cargo builds (default: target/ at the repository root)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NATIVE_DIR="$TARGET_DIR/debug"
case "$(uname -s)" in
Darwin) LIB_FILE=libhush_ffi.dylib ;;
*) LIB_FILE=libhush_ffi.so ;;
esac
LIB="$NATIVE_DIR/$LIB_FILE"
BINDGEN="$NATIVE_DIR/uniffi-bindgen"

PY_PKG="$ROOT/bindings/python/src/hush"
KOTLIN_GEN="$ROOT/ffi-kotlin/target/generated-sources/uniffi"
VENV="$ROOT/target/py-venv"

# Files of ffi-swift/ that uniffi-bindgen writes: generated name -> committed path.
SWIFT_FILES=(
    "Hush.swift:ffi-swift/Sources/Hush/Hush.swift"
    "HushFFI.h:ffi-swift/Sources/HushFFI/include/HushFFI.h"
    "HushFFI.modulemap:ffi-swift/Sources/HushFFI/include/module.modulemap"
)

missing() {
    if ((CI_MODE)); then
        echo "bindings: $1 is missing (.ci/run installs it)" >&2
        return 1
    fi
    echo "bindings: skipped $2: $1 is missing"
    return 0
}

build() {
    build_native
}

bindgen() {
    "$BINDGEN" generate "$LIB" --metadata-no-deps --no-format "$@"
}

generate() {
    [[ -f "$LIB" && -x "$BINDGEN" ]] || build
    bindgen --language python --out-dir "$PY_PKG"
    cp "$LIB" "$PY_PKG/"
    rm -rf "$KOTLIN_GEN"
    bindgen --language kotlin --out-dir "$KOTLIN_GEN"
}

python_tests() {
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing "python3 with venv (python3-venv)" "the Python tests"
        return
    fi
    [[ -f "$PY_PKG/hush_ffi.py" && -f "$PY_PKG/$LIB_FILE" ]] || generate
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV"
    fi
    local py="$VENV/bin/python"
    if ! "$py" -c 'import pytest, setuptools' >/dev/null 2>&1; then
        "$py" -m pip install -q --disable-pip-version-check "pytest>=7" "setuptools>=68"
    fi
    # A real (non-editable) install: the tests import the package as users get it.
    "$py" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps \
        "$ROOT/bindings/python"
    (cd "$ROOT/bindings/python" && HUSH_RELAY_BIN="$NATIVE_DIR/hush-relay" "$py" -m pytest -q -p no:cacheprovider tests)
}

kotlin_tests() {
    if ! command -v mvn >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
        missing "mvn or javac (maven, openjdk-17-jdk-headless)" "the Kotlin tests"
        return
    fi
    [[ -d "$KOTLIN_GEN" && -f "$LIB" ]] || generate
    local platform
    case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform=linux-x86-64 ;;
    Linux-aarch64) platform=linux-aarch64 ;;
    Darwin-arm64) platform=darwin-aarch64 ;;
    Darwin-x86_64) platform=darwin-x86-64 ;;
    *) platform="$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)" ;;
    esac
    (cd "$ROOT/ffi-kotlin" && mvn -B -q test -Dhush.native.dir="$NATIVE_DIR" -Dhush.jna.platform="$platform")
}

# swift_generate DIR: the Swift bindings into DIR.
swift_generate() {
    [[ -f "$LIB" && -x "$BINDGEN" ]] || build
    bindgen --language swift --out-dir "$1"
}

swift_check() {
    local dir rc=0 pair
    dir="$(mktemp -d)"
    swift_generate "$dir"
    for pair in "${SWIFT_FILES[@]}"; do
        if ! diff -u "$ROOT/${pair#*:}" "$dir/${pair%%:*}"; then
            echo "bindings: ${pair#*:} is not what uniffi-bindgen generates; run scripts/bindings.sh swift-write" >&2
            rc=1
        fi
    done
    rm -rf "$dir"
    return "$rc"
}

swift_write() {
    local dir pair
    dir="$(mktemp -d)"
    swift_generate "$dir"
    for pair in "${SWIFT_FILES[@]}"; do
        cp "$dir/${pair%%:*}" "$ROOT/${pair#*:}"
    done
    rm -rf "$dir"
}

case "${1:-all}" in
all)
    build
    generate
    python_tests
    kotlin_tests
    swift_check
    ;;
build) build ;;
generate) generate ;;
python) python_tests ;;
kotlin) kotlin_tests ;;
swift-check) swift_check ;;
swift-write) swift_write ;;
*)
    echo "usage: $0 [all|build|generate|python|kotlin|swift-check|swift-write]" >&2
    exit 2
    ;;
esac
