// Where the tests find what they need from the Rust side (the core library, the sandbox
// binary, the shared vectors), and the failures they report when it is missing. A test never
// skips for a missing piece: it fails, saying where it looked and how to build it.

import Foundation
import XCTest
import CarePassFFI

enum TestEnvironment {
    /// The command that builds both the core library and the sandbox binary.
    static let buildCommand = "cargo build -p carepass-ffi -p carepass-sandbox"

    /// The repository root. This file is ios/Tests/CarePassTests/Support/TestEnvironment.swift.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // Support
        .deletingLastPathComponent() // CarePassTests
        .deletingLastPathComponent() // Tests
        .deletingLastPathComponent() // ios
        .deletingLastPathComponent()

    private static var environment: [String: String] {
        ProcessInfo.processInfo.environment
    }

    private static func variable(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// `$CARGO_TARGET_DIR`, else `target/` of the repository (as Package.swift assumes).
    static var cargoTargetDirectory: URL {
        guard let directory = variable("CARGO_TARGET_DIR") else {
            return repositoryRoot.appendingPathComponent("target", isDirectory: true)
        }
        if directory.hasPrefix("/") {
            return URL(fileURLWithPath: directory, isDirectory: true)
        }
        return repositoryRoot.appendingPathComponent(directory, isDirectory: true)
    }

    /// Fails unless the core library is where Package.swift links it from, then makes one
    /// call into it (which also runs uniffi's check that bindings and library agree).
    static func requireNativeLibrary() throws {
        #if os(Linux)
        let directory = variable("CAREPASS_FFI_LIB_DIR").map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? cargoTargetDirectory.appendingPathComponent("debug", isDirectory: true)
        let library = directory.appendingPathComponent("libcarepass_ffi.so")
        let source = variable("CAREPASS_FFI_LIB_DIR") != nil ? "CAREPASS_FFI_LIB_DIR" : "the cargo target directory"
        let hint = "build it with `\(buildCommand)` at the repository root, or set CAREPASS_FFI_LIB_DIR to the directory that holds it"
        #else
        let library = repositoryRoot.appendingPathComponent("ios/build/CarePassFFI.xcframework", isDirectory: true)
        let source = "Package.swift's binary target"
        let hint = "build it with `ios/build-xcframework.sh` at the repository root"
        #endif
        guard FileManager.default.fileExists(atPath: library.path) else {
            throw SetupFailure("the CarePass core library is not at \(library.path) (\(source)): \(hint)")
        }
        _ = coreVersion()
    }

    /// The sandbox binary: `$CAREPASS_SANDBOX_BIN`, else `debug/carepass-sandbox` in the cargo
    /// target directory.
    static func sandboxBinary() throws -> URL {
        let binary: URL
        let source: String
        if let path = variable("CAREPASS_SANDBOX_BIN") {
            binary = URL(fileURLWithPath: path)
            source = "CAREPASS_SANDBOX_BIN"
        } else {
            binary = cargoTargetDirectory.appendingPathComponent("debug/carepass-sandbox")
            source = "the cargo target directory"
        }
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw SetupFailure(
                "the sandbox binary is not at \(binary.path) (\(source)): build it with `\(buildCommand)` at the repository root, or set CAREPASS_SANDBOX_BIN"
            )
        }
        return binary
    }

    /// A file of the shared vectors: `$CAREPASS_VECTORS_DIR/<relative>`, else
    /// `tests/vectors/<relative>` of the repository.
    static func vectorFile(_ relative: String) throws -> URL {
        let directory = variable("CAREPASS_VECTORS_DIR").map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? repositoryRoot.appendingPathComponent("tests/vectors", isDirectory: true)
        let file = directory.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw SetupFailure("the vector file is not at \(file.path): run the tests from a checkout of the repository, or set CAREPASS_VECTORS_DIR to its tests/vectors")
        }
        return file
    }
}

/// Something a test needs is missing or broken. Thrown from `setUpWithError`, which fails the
/// test (never skips it) with this message.
struct SetupFailure: Error, LocalizedError, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }

    var errorDescription: String? {
        description
    }
}

/// Runs `body` in `setUpWithError`, turning a thrown error into a recorded failure with its
/// message (and rethrowing it, so the test does not run).
func failingSetUp(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch {
        XCTFail("\(error)", file: file, line: line)
        throw error
    }
}
