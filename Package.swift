// swift-tools-version:5.10
//
// CarePass for iOS, and for Linux and macOS where the tests run, as a Swift package at the
// repository root, where SwiftPM looks when an app adds this repository by URL. See
// ios/README.md.
//
//   carepass_ffiFFI  the Rust core's C interface. On Apple platforms: the static-library
//                    XCFramework that ios/build-xcframework.sh builds. On Linux: the desktop
//                    library libcarepass_ffi.so that `cargo build -p carepass-ffi` builds, seen
//                    through ios/Linux/carepass_ffiFFI/module.modulemap
//   CarePassFFI      the uniffi-generated Swift bindings, compiled from the committed
//                    bindings/generated/swift (bindings/generate.sh writes them)
//   CarePass         the hand-written facade: CarePassClient, the one stream adapter, and
//                    the Apple adapters (Keychain, Secure Enclave, os.Logger) behind
//                    `#if canImport(...)`
//   CarePassNotificationExtension
//                    a Notification Service Extension base class (Apple only; an empty
//                    module elsewhere)
//
// The generated Swift needs a Swift 5.10 compiler or newer (Xcode 15.3+): it uses
// `nonisolated(unsafe)`.

import PackageDescription

#if os(Linux)
// Linux (the expected way to run the tests): link the desktop library from the cargo target
// directory. CAREPASS_FFI_LIB_DIR names the directory that holds libcarepass_ffi.so; without
// it, $CARGO_TARGET_DIR/debug, else target/debug of this repository. The directory is also
// the test binary's run path, so no LD_LIBRARY_PATH is needed.
//
// `unsafeFlags` only exist in this branch of the manifest, which SwiftPM evaluates on Linux
// only, so an Apple app that depends on this package by URL never sees them.
let ffiLibraryDirectory: String = {
    if let directory = Context.environment["CAREPASS_FFI_LIB_DIR"], !directory.isEmpty {
        return directory
    }
    if let target = Context.environment["CARGO_TARGET_DIR"], !target.isEmpty {
        return target.hasPrefix("/") ? target + "/debug" : Context.packageDirectory + "/" + target + "/debug"
    }
    return Context.packageDirectory + "/target/debug"
}()

let coreLibrary: Target = .systemLibrary(
    name: "carepass_ffiFFI",
    path: "ios/Linux/carepass_ffiFFI"
)

let coreLinkerSettings: [LinkerSetting] = [
    .linkedLibrary("carepass_ffi"),
    .unsafeFlags(["-L", ffiLibraryDirectory, "-Xlinker", "-rpath", "-Xlinker", ffiLibraryDirectory]),
]
#else
// Apple platforms: the XCFramework ios/build-xcframework.sh writes (not committed, so a fresh
// clone runs the script before anything else).
//
// A release instead uploads the archive `ios/build-xcframework.sh --zip` writes, and points
// this target at it with the checksum the script prints:
//
//     let coreLibrary: Target = .binaryTarget(
//         name: "carepass_ffiFFI",
//         url: "https://<release host>/<version>/CarePassFFI.xcframework.zip",
//         checksum: "<the checksum ios/build-xcframework.sh --zip printed>"
//     )
//
// The release's bindings/generated/swift must come from the same commit as the archive:
// uniffi checks at run time that both sides agree, and stops the app if they do not.
let coreLibrary: Target = .binaryTarget(
    name: "carepass_ffiFFI",
    path: "ios/build/CarePassFFI.xcframework"
)

// What the static Rust library links against (rustc's native-static-libs): the system TLS
// verifier and time zone lookup, and iconv for Rust's libc.
let coreLinkerSettings: [LinkerSetting] = [
    .linkedFramework("CoreFoundation"),
    .linkedFramework("Security"),
    .linkedLibrary("iconv"),
]
#endif

let package = Package(
    name: "CarePass",
    platforms: [
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [
        .library(name: "CarePass", targets: ["CarePass", "CarePassFFI"]),
        .library(name: "CarePassNotificationExtension", targets: ["CarePassNotificationExtension"]),
    ],
    targets: [
        coreLibrary,
        .target(
            name: "CarePassFFI",
            dependencies: ["carepass_ffiFFI"],
            path: "bindings/generated/swift",
            // The XCFramework carries its own copy of the header and module map; on Linux,
            // ios/Linux/carepass_ffiFFI/module.modulemap points at this header.
            exclude: ["carepass_ffiFFI.h", "carepass_ffiFFI.modulemap"],
            linkerSettings: coreLinkerSettings
        ),
        .target(
            name: "CarePass",
            // carepass_ffiFFI is listed as well so that this target sees the clang module the
            // generated Swift imports, whichever build system resolves the graph.
            dependencies: ["CarePassFFI", "carepass_ffiFFI"],
            path: "ios/Sources/CarePass",
            resources: [
                .copy("PrivacyInfo.xcprivacy"),
            ]
        ),
        .target(
            name: "CarePassNotificationExtension",
            dependencies: ["CarePass"],
            path: "ios/Sources/CarePassNotificationExtension"
        ),
        .testTarget(
            name: "CarePassTests",
            dependencies: ["CarePass", "CarePassFFI"],
            path: "ios/Tests/CarePassTests"
        ),
    ]
)
