#!/usr/bin/env bash
# Builds HushFFI.xcframework (macOS only): libhush_ffi as a static library for iOS devices, the iOS
# simulator (arm64 + x86_64) and macOS (arm64 + x86_64), each with the generated C header and module
# map. Package.swift uses it when HUSH_XCFRAMEWORK=1:
#     ffi-swift/scripts/build-xcframework.sh && HUSH_XCFRAMEWORK=1 swift build
# Needs Xcode and `rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
# aarch64-apple-darwin x86_64-apple-darwin`. PROFILE=release (default) or debug.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$HERE/HushFFI.xcframework"
WORK="$TARGET_DIR/xcframework"

if [[ "$(uname -s)" != Darwin ]]; then
    echo "build-xcframework.sh: needs macOS with Xcode" >&2
    exit 1
fi

profile_flag=()
[[ "$PROFILE" == release ]] && profile_flag=(--release)

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do
    cargo build -p hush-ffi --lib "${profile_flag[@]}" --target "$t"
done

lib() { echo "$TARGET_DIR/$1/$PROFILE/libhush_ffi.a"; }

rm -rf "$WORK" "$OUT"
mkdir -p "$WORK/headers" "$WORK/ios-sim" "$WORK/macos"
cp "$HERE/Sources/HushFFI/include/HushFFI.h" "$WORK/headers/"
cp "$HERE/Sources/HushFFI/include/module.modulemap" "$WORK/headers/module.modulemap"

# One fat library per platform: the simulator and macOS each have two architectures.
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$WORK/ios-sim/libhush_ffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$WORK/macos/libhush_ffi.a"

xcodebuild -create-xcframework \
    -library "$(lib aarch64-apple-ios)" -headers "$WORK/headers" \
    -library "$WORK/ios-sim/libhush_ffi.a" -headers "$WORK/headers" \
    -library "$WORK/macos/libhush_ffi.a" -headers "$WORK/headers" \
    -output "$OUT"
echo "built $OUT"
