#!/usr/bin/env bash
# The single command that runs every check and test of every language in the repository.
# Works from any directory. Runs every step even when one fails, then prints a table of all steps
# (ok or FAIL with its exit code, seconds) and exits non-zero when any step failed.
#
# Steps:
#   fmt          cargo fmt --all -- --check (and the same for the fuzz crate, outside the workspace)
#   clippy       cargo clippy --workspace --all-targets -- -D warnings (also type-checks every bench;
#                they are built and run by bench/ and `cargo bench`, not here)
#   test         cargo test --workspace            (unit, integration and doc tests; the relay on SQLite;
#                core/tests/fuzz_corpus.rs runs every fuzz body over fuzz/seeds/ and mutations of them)
#   doc          cargo doc --workspace --no-deps --examples --keep-going with RUSTDOCFLAGS="-D warnings"
#   deny         cargo deny --offline -t HOST check licenses bans sources (deny.toml: the licence allow-list,
#                crates.io only; after the builds, which fetched the crates it reads)
#   wasm         scripts/wasm.sh test              (store on wasm32 in Node and headless Chromium; hush-wasm Node tests)
#   web          scripts/web.sh test               (demo web chat: relay + two headless Chromium contexts, playwright-core)
#   bindings     scripts/bindings.sh               (uniffi: Python pytest, Kotlin mvn test, Swift up-to-date check)
#   interop      scripts/interop.sh                (Python, Kotlin and browser clients in one group through one relay)
#   relay-pg     the relay's test executables (from the test step's build) again on a throw-away local
#                PostgreSQL (two instances share it)
#
# Long fuzzing (nightly, cargo-fuzz) is not a step: scripts/fuzz.sh smoke|run, see fuzz/README.md.
#
# Environment:
#   CI=true       cargo runs with --locked (Cargo.lock must be up to date), every step runs on the MSRV
#                 toolchain (rust-version in Cargo.toml; .ci/run sets RUSTUP_TOOLCHAIN) and the deny step
#                 is mandatory (.ci/run installs cargo-deny); locally it is skipped with a message when
#                 cargo-deny is missing. Likewise mvn/javac and python3's venv
#                 for the bindings step.
#                 CI also builds without incremental state and prints the free disk after every step
#                 (a CI machine once ran out of disk), and drops the wasm32 build once the browser steps
#                 that need it are done.
#   HUSH_CRASH_RUNS  SIGKILLs in the store crash-consistency test (default 50; e.g. 500 for a long run),
#                 HUSH_CRASH_SEED replays a run (each run prints its seed).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if ((CI_MODE)); then
    # Incremental state is for edit-compile loops; on a one-shot run it only costs disk.
    export CARGO_INCREMENTAL=0
fi

# disk: free space where the build goes, and how much the build takes (printed after every step).
disk() {
    local free used
    free="$(df -h --output=avail "$ROOT" 2>/dev/null | tail -n 1 | tr -d ' ')" || true
    used="$(du -sh "$TARGET_DIR" 2>/dev/null | cut -f1)" || true
    echo "disk: ${free} free; target dir ${used:-0}"
}

RESULTS=()
FAILED=0
TOTAL_START=$SECONDS

summary() {
    echo
    echo "==================== summary ===================="
    local r
    for r in "${RESULTS[@]}"; do echo "  $r"; done
    printf '  %-12s %-14s %6ss\n' total "" "$((SECONDS - TOTAL_START))"
    if ((FAILED > 0)); then
        echo "test.sh: $FAILED of ${#RESULTS[@]} steps FAILED"
    else
        echo "test.sh: all ${#RESULTS[@]} steps passed"
    fi
}

# step NAME COMMAND... : runs COMMAND with a header and records its status and time; a failing
# step does not stop the later ones (each reports on its own), the exit status at the end does.
step() {
    local name="$1"
    shift
    echo
    echo "==================== $name ===================="
    echo "+ $*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    local took=$((SECONDS - start)) status=ok
    if ((rc != 0)); then
        status="FAIL (exit $rc)"
        FAILED=$((FAILED + 1))
        echo "==================== $name FAILED (exit $rc) after ${took}s"
    fi
    RESULTS+=("$(printf '%-12s %-14s %6ss' "$name" "$status" "$took")")
    disk
}

# The fuzz crate is outside the workspace, so `--all` does not reach it.
fmt_check() {
    cargo fmt --all -- --check &&
        cargo fmt --manifest-path fuzz/Cargo.toml -- --check
}

# The licence, duplicate-version and source checks of deny.toml, offline (from ~/.cargo's registry).
deny_check() {
    if ! cargo deny --version >/dev/null 2>&1; then
        if ((CI_MODE)); then
            echo "deny: cargo-deny is not installed (.ci/run installs it)" >&2
            return 1
        fi
        echo "deny: skipped, cargo-deny is not installed (cargo install cargo-deny --locked)"
        return 0
    fi
    # -t: the host's graph only (see deny.toml); offline, cargo metadata needs its crates, which the
    # clippy and test steps before this one fetched.
    local host
    host="$(rustc -vV | sed -n 's/^host: //p')"
    cargo deny --offline "${LOCKED[@]}" -t "$host" check --hide-inclusion-graph licenses bans sources
}

# CI runs every step on the minimum supported Rust version (rust-version in Cargo.toml; .ci/run sets
# RUSTUP_TOOLCHAIN to it), so the whole run is the MSRV build and each crate is compiled once, by one
# compiler. Lints newer than that toolchain's clippy are not enforced there. Locally: the active toolchain.
msrv="$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
active="$(rustc --version)"
echo "test.sh: $active (rust-version $msrv)"
if ((CI_MODE)) && [[ "$active" != "rustc $msrv."* ]]; then
    echo "test.sh: CI runs on the MSRV toolchain $msrv (RUSTUP_TOOLCHAIN=$msrv; .ci/run installs and sets it)" >&2
    exit 1
fi

disk
step fmt fmt_check
step clippy cargo clippy "${LOCKED[@]}" --workspace --all-targets -- -D warnings
step test cargo test "${LOCKED[@]}" --workspace
# --examples: the examples use the dev-dependencies, so the dependencies are checked with the same
# features as clippy's --all-targets did and rustdoc reuses clippy's metadata instead of checking them
# again.
# --keep-going: every crate's warnings in one run, not only the first failing crate's.
step doc env RUSTDOCFLAGS="-D warnings" cargo doc "${LOCKED[@]}" --workspace --no-deps --examples --keep-going
step deny deny_check
step wasm "$ROOT/scripts/wasm.sh" test
step web "$ROOT/scripts/web.sh" test
step bindings "$ROOT/scripts/bindings.sh"
step interop "$ROOT/scripts/interop.sh"
# The browser steps are done with the wasm32 build (interop uses the staged wasm/web/pkg): free its disk.
if ((CI_MODE)); then
    rm -rf "$TARGET_DIR/wasm32-unknown-unknown"
fi
# The relay's whole suite on PostgreSQL: a throw-away cluster on a free loopback port, stopped on exit.
relay_postgres() {
    local bin
    bin="$(find /usr/lib/postgresql -maxdepth 3 -name initdb -path '*/bin/*' 2>/dev/null | sort -V | tail -n 1)"
    bin="${bin%/initdb}"
    if [[ -z "$bin" ]]; then
        if ((CI_MODE)); then
            echo "relay-pg: PostgreSQL is not installed (.ci/run installs it)" >&2
            return 1
        fi
        echo "relay-pg: skipped, PostgreSQL is not installed (apt-get install postgresql)"
        return 0
    fi
    local dir port as=()
    dir="$(mktemp -d)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres "$dir"
        as=(runuser -u postgres --)
    fi
    "${as[@]}" "$bin/initdb" -D "$dir/db" -A trust -U postgres >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log"
        return 1
    }
    "${as[@]}" "$bin/pg_ctl" -D "$dir/db" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" start
    # The relay's test executables from the test step's build (`cargo test -p hush-relay` would resolve
    # the relay's features on their own and rebuild dozens of crates), run from relay/ as cargo test does.
    local rc=0 exe exes
    exes="$(cargo test "${LOCKED[@]}" --workspace --no-run --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] \
            and m["manifest_path"].endswith("/relay/Cargo.toml"):
        print(m["executable"])
')" || rc=$?
    if ((rc == 0)) && [[ -z "$exes" ]]; then
        echo "relay-pg: no test executables of hush-relay found" >&2
        rc=1
    fi
    if ((rc == 0)); then
        while IFS= read -r exe; do
            echo "relay-pg: ${exe#"$TARGET_DIR"/}"
            (cd "$ROOT/relay" && HUSH_RELAY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres" "$exe") ||
                rc=$?
        done <<<"$exes"
    fi
    "${as[@]}" "$bin/pg_ctl" -D "$dir/db" -m fast stop >/dev/null || true
    rm -rf "$dir"
    return "$rc"
}

step relay-pg relay_postgres

summary
((FAILED == 0))
