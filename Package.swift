// swift-tools-version:5.10
//
// CarePass for iOS (and macOS, where the tests run), as a Swift package at the repository
// root, where SwiftPM looks when an app adds this repository by URL. See ios/README.md.
//
//   carepass_ffiFFI  the Rust core: a static-library XCFramework with its C header and clang
//                    module, built by ios/build-xcframework.sh
//   CarePassFFI      the uniffi-generated Swift bindings, compiled from the committed
//                    bindings/generated/swift (bindings/generate.sh writes them)
//   CarePass         the hand-written facade: CarePassClient and the platform adapters
//
// The generated Swift needs a Swift 5.10 compiler or newer (Xcode 15.3+): it uses
// `nonisolated(unsafe)`.

import PackageDescription

// Local development: the XCFramework ios/build-xcframework.sh writes (not committed, so a
// fresh clone runs the script before anything else).
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

let package = Package(
    name: "CarePass",
    platforms: [
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [
        .library(name: "CarePass", targets: ["CarePass", "CarePassFFI"]),
    ],
    targets: [
        coreLibrary,
        .target(
            name: "CarePassFFI",
            dependencies: ["carepass_ffiFFI"],
            path: "bindings/generated/swift",
            // The XCFramework carries its own copy of the header and module map.
            exclude: ["carepass_ffiFFI.h", "carepass_ffiFFI.modulemap"],
            linkerSettings: [
                // What the static Rust library links against (rustc's native-static-libs):
                // the system TLS verifier and time zone lookup, and iconv for Rust's libc.
                .linkedFramework("CoreFoundation"),
                .linkedFramework("Security"),
                .linkedLibrary("iconv"),
            ]
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
        .testTarget(
            name: "CarePassTests",
            dependencies: ["CarePass", "CarePassFFI"],
            path: "ios/Tests/CarePassTests"
        ),
    ]
)
