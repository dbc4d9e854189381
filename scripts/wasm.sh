#!/usr/bin/env bash
# wasm32 builds and tests of hush: the store's runtime test, the hush-wasm npm package, its size
# and its benchmark.
#
#   scripts/wasm.sh test             the `wasm` step of scripts/test.sh:
#                                    1. hush-core's tests/wasm_*.rs on wasm32 in Node (wasm-bindgen-test-runner)
#                                    2. the same in headless Chromium (chromium + chromium-driver)
#                                    3. the hush-wasm package (dev build) and its Node tests (wasm/test/)
#   scripts/wasm.sh build [--release | --profile P] [--no-store] [--features F] [--out DIR]
#                                    builds wasm/pkg/{web,node} (or DIR/{web,node}) with wasm-bindgen (--target
#                                    web and nodejs); --release uses the wasm-release profile and wasm-opt -Oz
#                                    when installed and its output still loads (--profile P: no wasm-opt)
#   scripts/wasm.sh size             release builds without and with the store: raw and gzipped sizes
#   scripts/wasm.sh bench            size, then encrypt+decrypt throughput in wasm (Node) vs native
#
# Needs: the wasm32-unknown-unknown target, clang, wasm-bindgen-cli at the Cargo.lock version of
# wasm-bindgen (wasm-bindgen-test-runner comes with it), node; chromium + chromium-driver for step 2;
# binaryen (wasm-opt) optional, for release builds. `.ci/run` installs all but binaryen.
# CI=true: every step is mandatory (a missing browser fails instead of being skipped) and cargo is --locked.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TARGET=wasm32-unknown-unknown
WASM_OPT_USED=0
PKG="$ROOT/wasm/pkg"

# The wasm-bindgen version Cargo.lock pins; wasm-bindgen-cli must be exactly that version.
lock_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

check_tools() {
    local want have
    want="$(lock_version)"
    command -v node >/dev/null || die "node is missing (apt-get install nodejs)"
    command -v clang >/dev/null || die "clang is missing (apt-get install clang): it compiles SQLite for wasm32"
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
        die "the $TARGET target is missing (rustup target add $TARGET)"
    have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')" || true
    [[ "$have" == "$want" ]] ||
        die "wasm-bindgen-cli $want is needed, found '${have:-none}' (cargo install wasm-bindgen-cli --version $want)"
    command -v wasm-bindgen-test-runner >/dev/null || die "wasm-bindgen-test-runner is missing (comes with wasm-bindgen-cli)"
}

# The store's runtime tests (core/tests/wasm_*.rs) on wasm32, through the runner in .cargo/config.toml.
# `-p hush-wasm` builds nothing of hush-wasm here (only the --test targets run, and hush-wasm has none)
# but resolves features as the package build (`build` below) does: hush-core with `serde`, wasm-bindgen
# with its default features. The two builds then share hush-core and every dependency (with
# core/Cargo.toml's native-only chacha20poly1305 dev-dependency and wasm/Cargo.toml's serde "alloc"),
# where each used to compile its own hush-core, serde, wasm-bindgen, js-sys, getrandom, rusqlite,
# sqlite-wasm-rs and the RustCrypto crates. The tests are the same; hush-core is built as the
# npm package ships it.
core_tests() {
    local tests=() f
    for f in core/tests/wasm_*.rs; do
        tests+=(--test "$(basename "$f" .rs)")
    done
    cargo test "${LOCKED[@]}" -p hush-core -p hush-wasm --target "$TARGET" "${tests[@]}"
}

browser_tests() {
    local chromedriver="${CHROMEDRIVER:-/usr/bin/chromedriver}"
    if [[ ! -x "$chromedriver" ]] || ! command -v chromium >/dev/null; then
        if ((CI_MODE)); then
            die "chromium and chromium-driver are needed in CI (apt-get install chromium chromium-driver)"
        fi
        log "headless Chromium tests skipped: chromium or $chromedriver missing (apt-get install chromium chromium-driver)"
        return 0
    fi
    log "the same tests in headless Chromium"
    WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER="$chromedriver" core_tests
}

# build [--release] [--no-store] [--features F] [--out DIR]: wasm/pkg/{web,node} (or DIR/{web,node}).
build() {
    local profile=dev release=0 features=() default=() out="$PKG"
    while (($#)); do
        case "$1" in
            --release) profile=wasm-release release=1 ;;
            --profile) profile="$2" && shift ;;
            --no-store) default=(--no-default-features) ;;
            --features) features=(--features "$2") && shift ;;
            --out) out="$2" && shift ;;
            *) die "build: unknown option $1" ;;
        esac
        shift
    done
    cargo build "${LOCKED[@]}" -p hush-wasm --target "$TARGET" --profile "$profile" "${default[@]}" "${features[@]}"
    local dir="$profile"
    [[ "$profile" == dev ]] && dir=debug
    local wasm="$TARGET_DIR/$TARGET/$dir/hush_wasm.wasm"
    WASM_OPT_USED=0
    if ((release)) && command -v wasm-opt >/dev/null; then
        # wasm-opt before wasm-bindgen: Debian bookworm's binaryen 108 breaks wasm-bindgen's
        # externref table when run after it. Kept only if the result still loads and runs in Node.
        local optdir
        optdir="$(mktemp -d)"
        # Rust's wasm32 target emits these post-MVP features by default.
        wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
            --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
            -o "$optdir/hush_wasm.wasm" "$wasm"
        bindgen "$optdir/hush_wasm.wasm" "$out"
        if node -e 'require(process.argv[1]).version()' "$out/node/hush_wasm.js" >/dev/null 2>&1; then
            WASM_OPT_USED=1
        else
            log "the module that $(wasm-opt --version) produced does not load; keeping the unoptimised one"
            bindgen "$wasm" "$out"
        fi
        rm -rf "$optdir"
    else
        if ((release)); then
            log "wasm-opt not found (apt-get install binaryen): release build not optimised by wasm-opt"
        fi
        bindgen "$wasm" "$out"
    fi
    log "built $out/{web,node} ($profile$( ((${#default[@]})) && echo ', without the store'))"
}

# bindgen WASM DIR: the web and Node builds of WASM into DIR/{web,node}.
bindgen() {
    rm -rf "$2/web" "$2/node"
    wasm-bindgen --target web --out-dir "$2/web" "$1"
    wasm-bindgen --target nodejs --out-dir "$2/node" "$1"
    # Say which module system each build uses (the package itself is "type": "module").
    echo '{ "type": "module" }' >"$2/web/package.json"
    echo '{ "type": "commonjs" }' >"$2/node/package.json"
}

package_tests() {
    build
    node --test "$ROOT/wasm/test/"
}

# size_of FILE: "raw gzip" in bytes (gzip -9, as a server would serve it).
size_of() {
    echo "$(stat -c %s "$1") $(gzip -9 -c "$1" | wc -c)"
}

size() {
    local tmp
    tmp="$(mktemp -d)"
    build --release --no-store --out "$tmp/protocol"
    build --release --out "$tmp/full"
    local p f
    p="$(size_of "$tmp/protocol/web/hush_wasm_bg.wasm")"
    f="$(size_of "$tmp/full/web/hush_wasm_bg.wasm")"
    echo
    echo "| hush-wasm module (release, wasm-release profile$( ((WASM_OPT_USED)) && echo ', wasm-opt -Oz')) | raw | gzip -9 |"
    echo "|---|---|---|"
    read -r raw gz <<<"$p"
    printf '| without SQLite (protocol exports, --no-default-features) | %d KB | %d KB |\n' $((raw / 1024)) $((gz / 1024))
    read -r raw gz <<<"$f"
    printf '| with SQLite (default features: the encrypted store) | %d KB | %d KB |\n' $((raw / 1024)) $((gz / 1024))
    rm -rf "$tmp"
}

bench() {
    size
    local tmp
    tmp="$(mktemp -d)"
    build --release --features bench --out "$tmp/bench"
    build --profile release --features bench --out "$tmp/bench-o3"
    echo
    log "encrypt + decrypt of 100-byte messages on an established session"
    log "wasm, the shipped wasm-release profile (opt-level z):"
    node "$ROOT/wasm/bench/session.mjs" "$tmp/bench/node/hush_wasm.js"
    log "wasm, the release profile (opt-level 3):"
    node "$ROOT/wasm/bench/session.mjs" "$tmp/bench-o3/node/hush_wasm.js"
    log "native, release profile:"
    cargo run "${LOCKED[@]}" --release -q -p hush-wasm --features bench --example session_native
    rm -rf "$tmp"
}

case "${1:-}" in
    test)
        check_tools
        log "hush-core's wasm tests in Node"
        core_tests
        browser_tests
        log "the hush-wasm package and its Node tests"
        package_tests
        ;;
    build)
        shift
        check_tools
        build "$@"
        ;;
    size)
        check_tools
        size
        ;;
    bench)
        check_tools
        bench
        ;;
    *)
        sed -n '2,20p' "${BASH_SOURCE[0]}"
        exit 2
        ;;
esac
