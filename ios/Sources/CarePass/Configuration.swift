// How an app builds its `CarePassConfig`: the default data directory (Application Support,
// kept out of backups, or an app group's container when a Notification Service Extension
// shares it) and a constructor that fills in the platform name.

import Foundation
import CarePassFFI

extension CarePassConfig {
    /// A configuration for the app, or for its Notification Service Extension.
    ///
    /// - Parameters:
    ///   - serverURL: the platform, `https://…` (plain `http://` only to loopback: the sandbox).
    ///   - deviceName: shown to the user in their list of enrolled devices.
    ///   - dataDirectory: where the core keeps its store; `CarePassConfig.defaultDataDirectory()`
    ///     when nil. An app with a Notification Service Extension passes
    ///     `sharedDataDirectory(appGroup:)` in both.
    ///   - requestTimeoutMs: whole-request timeout; 0 keeps the core's default (15 s).
    ///   - pinnedRootsPem: PEM root certificates to pin; empty trusts the system's verifier.
    ///   - inExtension: true in the Notification Service Extension: the core then never opens
    ///     its database (its first open costs about 22 MB, the extension's limit is about
    ///     24 MB) and `handlePush` leaves its pull for the app to apply.
    public static func app(
        serverURL: String,
        deviceName: String,
        dataDirectory: URL? = nil,
        requestTimeoutMs: UInt64 = 0,
        pinnedRootsPem: [String] = [],
        inExtension: Bool = false
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
            pinnedRootsPem: pinnedRootsPem,
            `extension`: inExtension
        )
    }

    /// `Application Support/CarePass`, created if missing and, on Apple platforms, excluded
    /// from backups: the store's data key lives in the Keychain with a this-device-only
    /// accessibility, so a store restored onto another device could not be opened anyway.
    public static func defaultDataDirectory() throws -> URL {
        let directory = try FileManager.default
            .url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("CarePass", isDirectory: true)
        return try prepared(directory)
    }

    #if canImport(Darwin)
    /// `Library/Application Support/CarePass` in the container of app group `appGroup`, which
    /// the app and its Notification Service Extension both open (both targets need the App
    /// Groups entitlement with that group).
    public static func sharedDataDirectory(appGroup: String) throws -> URL {
        guard let container = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: appGroup) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no container for app group \(appGroup): check the App Groups entitlement"])
        }
        let directory = container
            .appendingPathComponent("Library", isDirectory: true)
            .appendingPathComponent("Application Support", isDirectory: true)
            .appendingPathComponent("CarePass", isDirectory: true)
        return try prepared(directory)
    }
    #endif

    /// Creates `directory` if missing and keeps it out of backups (Apple platforms).
    private static func prepared(_ directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        #if canImport(Darwin)
        var excluded = directory
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try excluded.setResourceValues(values)
        return excluded
        #else
        return directory
        #endif
    }
}
