#!/usr/bin/env bash
# Fuzzing of hush-core with cargo-fuzz (libFuzzer), from the fuzz/ crate.
#
#   scripts/fuzz.sh smoke                       build every target, run each for FUZZ_SECONDS (default 20)
#   scripts/fuzz.sh run TARGET [SECONDS] [-- LIBFUZZER_ARGS...]
#                                               run one target longer (default 600 s)
#   scripts/fuzz.sh list                        list the targets
#
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly --profile minimal && cargo install cargo-fuzz --locked
#
# Environment:
#   FUZZ_SECONDS    seconds per target in `smoke` (default 20)
#   FUZZ_TOOLCHAIN  rustup toolchain used for cargo-fuzz (default nightly)
#   CI              when "true", `smoke` fails if nightly or cargo-fuzz is missing (locally it skips);
#                   CI itself does not run this script (scripts/test.sh runs the bodies over the seeds)
#
# Corpora grow in fuzz/corpus/TARGET (gitignored), starting from the checked-in seeds in fuzz/seeds/TARGET
# (which CI runs on stable, with mutations, in core/tests/fuzz_corpus.rs); crashes land in
# fuzz/artifacts/TARGET (gitignored).
# Builds use --debug-assertions so integer overflows and debug_assert!s are caught while fuzzing.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FUZZ_DIR="$ROOT/fuzz"
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
# The same flags for build and run, so `run` reuses what `build` produced.
BUILD_FLAGS=(--debug-assertions)

usage() {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-64}"
}

# Prints nothing and succeeds when the tools are there; otherwise prints what is missing.
missing_tools() {
    # RUSTUP_AUTO_INSTALL=0: checking for the toolchain must not install it.
    if ! RUSTUP_AUTO_INSTALL=0 cargo "+$TOOLCHAIN" --version >/dev/null 2>&1; then
        echo "the '$TOOLCHAIN' toolchain is not installed (rustup toolchain install $TOOLCHAIN --profile minimal)"
        return 1
    fi
    if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
        echo "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
        return 1
    fi
}

require_tools() {
    local why
    if ! why="$(missing_tools)"; then
        echo "fuzz.sh: error: $why" >&2
        exit 1
    fi
}

positive_int() {
    [[ "$1" =~ ^[1-9][0-9]*$ ]]
}

# Fills the array TARGETS from `cargo fuzz list`; exits if the listing itself fails.
TARGETS=()
load_targets() {
    local listing
    if ! listing="$(cd "$FUZZ_DIR" && cargo "+$TOOLCHAIN" fuzz list --fuzz-dir "$FUZZ_DIR")"; then
        echo "fuzz.sh: error: 'cargo +$TOOLCHAIN fuzz list' failed in fuzz/" >&2
        exit 1
    fi
    mapfile -t TARGETS < <(grep -v '^[[:space:]]*$' <<<"$listing" || true)
}

cmd_smoke() {
    local seconds="${FUZZ_SECONDS:-20}"
    positive_int "$seconds" || { echo "fuzz.sh: FUZZ_SECONDS must be a positive integer, got '$seconds'" >&2; exit 64; }

    local why
    if ! why="$(missing_tools)"; then
        if ((CI_MODE)); then
            echo "fuzz.sh: error: CI=$CI and $why; fuzzing is required in CI" >&2
            exit 1
        fi
        echo "fuzz.sh: SKIPPED fuzz smoke: $why."
        echo "fuzz.sh: (in CI this is an error; .ci/run installs both)"
        return 0
    fi

    load_targets
    local targets=("${TARGETS[@]}")
    if ((${#targets[@]} == 0)); then
        echo "fuzz.sh: no fuzz targets in fuzz/ yet; nothing to smoke."
        return 0
    fi

    echo "fuzz.sh: building ${#targets[@]} target(s): ${targets[*]}"
    if ! (cd "$FUZZ_DIR" && cargo "+$TOOLCHAIN" fuzz build --fuzz-dir "$FUZZ_DIR" "${BUILD_FLAGS[@]}"); then
        echo "fuzz.sh: FAILED: building the fuzz targets (see above)" >&2
        exit 1
    fi

    local t start stamp found
    stamp="$(mktemp)"
    for t in "${targets[@]}"; do
        echo "fuzz.sh: --- $t for ${seconds}s"
        start=$SECONDS
        touch "$stamp"
        mkdir -p "$FUZZ_DIR/corpus/$t"
        if ! (cd "$FUZZ_DIR" && cargo "+$TOOLCHAIN" fuzz run --fuzz-dir "$FUZZ_DIR" "${BUILD_FLAGS[@]}" "$t" \
            "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t" -- \
            -max_total_time="$seconds" -print_final_stats=1); then
            found="$(find "$FUZZ_DIR/artifacts/$t" -type f -newer "$stamp" 2>/dev/null | head -n 1)"
            rm -f "$stamp"
            if [[ -n "$found" ]]; then
                echo "fuzz.sh: FAILED: target '$t' found a failing input: ${found#"$ROOT"/}" >&2
                echo "fuzz.sh: reproduce with: (cd fuzz && cargo +$TOOLCHAIN fuzz run ${BUILD_FLAGS[*]} $t ${found#"$FUZZ_DIR"/})" >&2
            else
                echo "fuzz.sh: FAILED: 'cargo fuzz run $t' failed without a failing input (build error? see above)" >&2
            fi
            exit 1
        fi
        echo "fuzz.sh: ok: $t ($((SECONDS - start))s)"
    done
    rm -f "$stamp"
    echo "fuzz.sh: smoke passed: ${#targets[@]} target(s), ${seconds}s each"
}

cmd_run() {
    (($# >= 1)) || usage
    local target="$1"
    shift
    local seconds=600
    if (($# >= 1)) && [[ "$1" != "--" ]]; then
        seconds="$1"
        shift
    fi
    positive_int "$seconds" || { echo "fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2; exit 64; }
    if (($# >= 1)); then
        [[ "$1" == "--" ]] || usage
        shift
    fi

    require_tools
    load_targets
    local targets=("${TARGETS[@]}")
    local t found=0
    for t in "${targets[@]}"; do [[ "$t" == "$target" ]] && found=1; done
    if ((found == 0)); then
        echo "fuzz.sh: unknown target '$target'; targets: ${targets[*]:-(none)}" >&2
        exit 64
    fi

    echo "fuzz.sh: running $target for ${seconds}s (corpus fuzz/corpus/$target, crashes fuzz/artifacts/$target)"
    mkdir -p "$FUZZ_DIR/corpus/$target"
    cd "$FUZZ_DIR"
    exec cargo "+$TOOLCHAIN" fuzz run --fuzz-dir "$FUZZ_DIR" "${BUILD_FLAGS[@]}" "$target" \
        "$FUZZ_DIR/corpus/$target" "$FUZZ_DIR/seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 "$@"
}

cmd_list() {
    require_tools
    load_targets
    if ((${#TARGETS[@]} > 0)); then printf '%s\n' "${TARGETS[@]}"; fi
}

(($# >= 1)) || usage
cmd="$1"
shift
case "$cmd" in
    smoke) (($# == 0)) || usage; cmd_smoke ;;
    run) cmd_run "$@" ;;
    list) (($# == 0)) || usage; cmd_list ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
esac
