#!/usr/bin/env bash
# Backlog throughput (issue 16 part 4): through the Python binding against a release relay on
# loopback, Alice sends N texts to an offline Bob (send rate), then Bob connects and receives them
# all (receive rate); the storage floor (plain SQLite inserts, same settings) runs in the same
# process as the peer. Prints one JSON line per N, with peak RSS of the client process and the relay.
#
#   bench/backlog.sh [N ...]        default: 20000 100000 (the second shows whether memory is flat)
#
# The relay runs with its rate limits and mailbox quota lifted (flags below): the default per-device
# rate (50 frames/s) and quota (10,000 queued) would measure the limits, not the pipeline.
# Not part of scripts/test.sh: numbers belong in BENCHMARKS.md, not in tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
COUNTS=("$@")
((${#COUNTS[@]})) || COUNTS=(20000 100000)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REL="$TARGET_DIR/release"

cargo build --release -p hush-relay --bin hush-relay -p hush-ffi --lib
# The generator's output does not depend on its own profile: the debug one (scripts/bindings.sh's).
cargo build -p hush-uniffi-bindgen

WORK="$(mktemp -d)"
RELAY_PID=
cleanup() {
    [[ -n "$RELAY_PID" ]] && kill "$RELAY_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The Python package generated from the release library itself, with the library beside it.
mkdir -p "$WORK/py/hush"
cp bindings/python/src/hush/__init__.py "$WORK/py/hush/"
"$TARGET_DIR/debug/uniffi-bindgen" generate "$REL/libhush_ffi.so" --metadata-no-deps --no-format --language python \
    --out-dir "$WORK/py/hush" >/dev/null
cp "$REL/libhush_ffi.so" "$WORK/py/hush/"

for n in "${COUNTS[@]}"; do
    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    rm -rf "$WORK/relay" "$WORK/run" && mkdir -p "$WORK/run"
    "$REL/hush-relay" --listen "127.0.0.1:$PORT" --data-dir "$WORK/relay" --no-web --log warn \
        --rate-device 1000000 --rate-device-burst 1000000 --rate-ip 1000000 --rate-ip-burst 1000000 \
        --mailbox-quota 10000000 --mailbox-quota-bytes 100000000000 &
    RELAY_PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    nice -n 10 env PYTHONPATH="$WORK/py" python3 bindings/python/bench/backlog.py \
        "ws://127.0.0.1:$PORT/v1/ws" "$RELAY_PID" "$WORK/run" "$n"
    kill "$RELAY_PID" && wait "$RELAY_PID" 2>/dev/null || true
    RELAY_PID=
done
