#!/usr/bin/env bash
# FFI overhead (issue 6's benchmark): the same HushClient calls from Rust, Python (uniffi) and
# Kotlin (uniffi on the JVM), against one release relay on loopback, one after the other, with the
# same release build of libhush_ffi. Prints one JSON line per language and the ratios to Rust.
#
#   bench/ffi.sh [round trips]        (after scripts/bindings.sh, which generates the bindings)
#
# Not part of scripts/test.sh: numbers belong in BENCHMARKS.md, not in tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-200}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REL="$TARGET_DIR/release"

cargo build --release -p hush-relay --bin hush-relay
cargo build --release -p hush-ffi --lib --example roundtrip
[[ -f bindings/python/src/hush/hush_ffi.py ]] || { echo "run scripts/bindings.sh first" >&2; exit 1; }

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$REL/hush-relay" --listen "127.0.0.1:$PORT" --data-dir "$WORK/relay" --no-web --log warn &
RELAY_PID=$!
trap 'kill "$RELAY_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
URL="ws://127.0.0.1:$PORT/v1/ws"

# Python: the generated package, with the release library beside it.
cp -r bindings/python/src/hush "$WORK/hush"
cp "$REL/libhush_ffi.so" "$WORK/hush/libhush_ffi.so"
# Kotlin: the test classes, JNA loading the release library.
(cd ffi-kotlin && mvn -B -q test-compile -Dhush.native.dir="$REL" &&
    mvn -B -q dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test)
CP="ffi-kotlin/target/classes:ffi-kotlin/target/test-classes:$(cat ffi-kotlin/target/bench-classpath.txt)"

{
    "$REL/examples/roundtrip" "$URL" "$ROUNDS"
    PYTHONPATH="$WORK" python3 bindings/python/bench/roundtrip.py "$URL" "$ROUNDS"
    java -Djna.library.path="$REL" -cp "$CP" dev.hush.RoundTripBenchKt "$URL" "$ROUNDS"
} | tee "$WORK/results.jsonl"

python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rust = next(r for r in rows if r["language"] == "rust")
print(f"\n{'language':<8} {'history() µs':>13} {'× Rust':>7} {'sendText→received µs (p50)':>27} {'× Rust':>7}")
for r in rows:
    print(f"{r['language']:<8} {r['history_call_us']:>13} {r['history_call_us'] / rust['history_call_us']:>7.2f} "
          f"{r['roundtrip_p50_us']:>27} {r['roundtrip_p50_us'] / rust['roundtrip_p50_us']:>7.2f}")
PY
