// How an app builds its `CarePassConfig`: the default data directory (Application Support,
// kept out of backups) and a constructor that fills in the platform name.

import Foundation
import CarePassFFI

extension CarePassConfig {
    /// A configuration for an app on this device.
    ///
    /// - Parameters:
    ///   - serverURL: the platform, `https://…` (plain `http://` only to loopback: the sandbox).
    ///   - deviceName: shown to the user in their list of enrolled devices.
    ///   - dataDirectory: where the core keeps its store; `CarePassConfig.defaultDataDirectory()`
    ///     when nil.
    ///   - requestTimeoutMs: whole-request timeout; 0 keeps the core's default (15 s).
    ///   - pinnedRootsPem: PEM root certificates to pin; empty trusts the system's verifier.
    public static func app(
        serverURL: String,
        deviceName: String,
        dataDirectory: URL? = nil,
        requestTimeoutMs: UInt64 = 0,
        pinnedRootsPem: [String] = []
    ) throws -> CarePassConfig {
        let directory = try dataDirectory ?? defaultDataDirectory()
        return CarePassConfig(
            serverUrl: serverURL,
            dataDir: directory.path,
            deviceName: deviceName,
            // The platform knows "android", "ios" and "terminal"; a Mac build of the app
            // runs the iOS code, so it says "ios" too.
            platform: "ios",
            requestTimeoutMs: requestTimeoutMs,
            pinnedRootsPem: pinnedRootsPem
        )
    }

    /// `Application Support/CarePass`, created if missing and excluded from backups: the
    /// store's data key lives in the Keychain with a this-device-only accessibility, so a
    /// store restored onto another device could not be opened anyway.
    public static func defaultDataDirectory() throws -> URL {
        let fileManager = FileManager.default
        var directory = try fileManager
            .url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("CarePass", isDirectory: true)
        try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try directory.setResourceValues(values)
        return directory
    }
}
