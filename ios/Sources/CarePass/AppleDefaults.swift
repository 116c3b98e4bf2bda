// The Apple adapters as the default way to open the core in an app: the Keychain for the
// store's data key, the Secure Enclave for the device key, the unified log for log lines.
//
// Apple only; on Linux, pass a secret store, a key store (or nil) and a logger (or nil) to
// `CarePassClient.init(config:secretStore:keyStore:logger:)`.

#if canImport(Security) && canImport(os)
import CarePassFFI

extension CarePassClient {
    /// Opens the core for an app: `KeychainSecretStore`, `SecureEnclaveDeviceKey` and
    /// `OSLogLogger`.
    ///
    /// - Parameter keychainAccessGroup: a keychain access group shared with the app's
    ///   Notification Service Extension (which needs the same data key), or nil for the
    ///   app's default group.
    public convenience init(config: CarePassConfig, keychainAccessGroup: String? = nil) throws {
        try self.init(
            config: config,
            secretStore: KeychainSecretStore(accessGroup: keychainAccessGroup),
            keyStore: SecureEnclaveDeviceKey(),
            logger: OSLogLogger()
        )
    }
}
#endif
