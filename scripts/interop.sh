#!/usr/bin/env bash
# The interop test of issue 6: a Python client (uniffi), a Kotlin client (uniffi on the JVM) and a
# browser client (hush-wasm in headless Chromium) join one group through one real relay, exchange
# messages, a reaction and an attachment, and check order and uniqueness (tests/interop/run.py).
#
# Run after scripts/bindings.sh (the Python package and the Kotlin classes) and scripts/web.sh
# build (the web assets); scripts/test.sh does, in that order. CI=true: every participant is
# required; locally a missing browser or JDK drops that participant with a note.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NATIVE_DIR="$TARGET_DIR/debug"

build_native
[[ -f "$ROOT/bindings/python/src/hush/hush_ffi.py" ]] || die "run scripts/bindings.sh first (the Python package)"
[[ -f "$ROOT/wasm/web/pkg/web/hush_wasm_bg.wasm" ]] || die "run scripts/web.sh build first (the web assets)"

ARGS=(--relay "$NATIVE_DIR/hush-relay" --web-dir "$ROOT/wasm/web")

if command -v mvn >/dev/null && command -v java >/dev/null; then
    (cd "$ROOT/ffi-kotlin" &&
        mvn -B -q test-compile -Dhush.native.dir="$NATIVE_DIR" &&
        mvn -B -q dependency:build-classpath -Dmdep.outputFile=target/interop-classpath.txt -Dmdep.includeScope=test)
    CP="$ROOT/ffi-kotlin/target/classes:$ROOT/ffi-kotlin/target/test-classes:$(cat "$ROOT/ffi-kotlin/target/interop-classpath.txt")"
    ARGS+=(--kotlin "java -Djna.library.path=$NATIVE_DIR -cp $CP dev.hush.InteropPeerKt")
else
    ((CI_MODE)) && die "mvn and java are needed in CI"
    log "the Kotlin participant is skipped: mvn or java missing"
fi

if command -v chromium >/dev/null && [[ -d "$ROOT/wasm/tests/web/node_modules/playwright-core" ]]; then
    ARGS+=(--browser "node $ROOT/tests/interop/browser_peer.mjs")
else
    ((CI_MODE)) && die "chromium and wasm/tests/web's node_modules (scripts/web.sh test) are needed in CI"
    log "the browser participant is skipped: chromium or playwright-core missing"
fi

PYTHONPATH="$ROOT/bindings/python/src${PYTHONPATH:+:$PYTHONPATH}" python3 "$ROOT/tests/interop/run.py" "${ARGS[@]}"
