#!/usr/bin/env bash
# The demo web chat (wasm/web) and its browser test.
#
#   scripts/web.sh build [--release]   builds the hush-wasm module (scripts/wasm.sh build) and puts it with
#                                      the HushClient wrapper (wasm/js) into wasm/web (pkg/web/, js/), which
#                                      the relay serves at `/`
#   scripts/web.sh test                the `web` step of scripts/test.sh: build, then wasm/tests/web/client.test.mjs
#                                      (two HushClients in Node, `ws` as WebSocket, through a real relay) and
#                                      chat.spec.mjs (playwright-core driving two headless Chromium contexts
#                                      through a real relay serving the demo)
#   scripts/web.sh run [relay flags]   build --release, then run the relay with the demo (prints the URL)
#
# Needs what scripts/wasm.sh needs, plus chromium (Debian's, /usr/bin/chromium) and npm for the test's
# dependencies (`npm ci` in wasm/tests/web). CI=true: a missing browser fails instead of skipping.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WEB="$ROOT/wasm/web"
PKG_OUT="$TARGET_DIR/web-pkg"

# build [--release]: the module into $PKG_OUT (not wasm/pkg, which scripts/wasm.sh owns), then staged.
build() {
    "$ROOT/scripts/wasm.sh" build "$@" --out "$PKG_OUT"
    rm -rf "$WEB/js" "$WEB/pkg"
    mkdir -p "$WEB/pkg"
    cp -r "$ROOT/wasm/js" "$WEB/js"
    cp -r "$PKG_OUT/web" "$WEB/pkg/web"
    log "demo web chat staged in $WEB ($(stat -c %s "$WEB/pkg/web/hush_wasm_bg.wasm") bytes of wasm)"
}

chat_test() {
    if ! command -v chromium >/dev/null; then
        ((CI_MODE)) && die "chromium is needed in CI (apt-get install chromium)"
        log "browser test skipped: chromium missing (apt-get install chromium)"
        return 0
    fi
    command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
    build
    build_native
    (cd "$ROOT/wasm/tests/web" && { [[ node_modules/.package-lock.json -nt package-lock.json ]] || npm ci --no-audit --no-fund; })
    export HUSH_RELAY_BIN="$TARGET_DIR/debug/hush-relay" HUSH_WEB_DIR="$WEB"
    node --test "$ROOT/wasm/tests/web/client.test.mjs"
    node "$ROOT/wasm/tests/web/chat.spec.mjs"
}

case "${1:-}" in
    build)
        shift
        build "$@"
        ;;
    test)
        chat_test
        ;;
    run)
        shift
        build --release
        exec cargo run "${LOCKED[@]}" --release -p hush-relay -- --web-dir "$WEB" "$@"
        ;;
    *)
        sed -n '2,15p' "${BASH_SOURCE[0]}"
        exit 2
        ;;
esac
