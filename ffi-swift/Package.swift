// swift-tools-version:5.9
// The Swift package of hush: uniffi-generated Swift (Sources/Hush, committed; CI checks it is up to
// date) over the C declarations of the native library (Sources/HushFFI).
//
// Linking: by default the package links `libhush_ffi` from the linker's search path, which is how
// the tests run on macOS:
//     cargo build -p hush-ffi && swift test -Xlinker -L../target/debug
// With `HUSH_XCFRAMEWORK=1` it uses `HushFFI.xcframework` (built by scripts/build-xcframework.sh:
// static libraries for iOS, the iOS simulator and macOS) instead, which is what apps ship.
import PackageDescription
import Foundation

let useXCFramework = ProcessInfo.processInfo.environment["HUSH_XCFRAMEWORK"] == "1"

let ffiTarget: Target = useXCFramework
    ? .binaryTarget(name: "HushFFI", path: "HushFFI.xcframework")
    : .target(
        name: "HushFFI",
        path: "Sources/HushFFI",
        linkerSettings: [.linkedLibrary("hush_ffi")]
    )

let package = Package(
    name: "Hush",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Hush", targets: ["Hush"]),
    ],
    targets: [
        ffiTarget,
        .target(name: "Hush", dependencies: ["HushFFI"], path: "Sources/Hush"),
        // The tests read ../test-vectors through #filePath (resources cannot live outside the package).
        .testTarget(name: "HushTests", dependencies: ["Hush"], path: "Tests/HushTests"),
    ]
)
