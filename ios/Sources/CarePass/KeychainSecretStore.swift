// `KeychainSecretStore`: the core's `SecretStore` (the store's data key and other small
// secrets) kept as generic-password items in the Keychain, readable after the first unlock
// and never leaving this device.
//
// Apple only (the Security framework); not compiled on Linux.

#if canImport(Security)
import Foundation
import Security
import CarePassFFI

/// Keeps the core's secrets in the Keychain: one `kSecClassGenericPassword` item per name,
/// under service `app.carepass`, accessible after first unlock, this device only.
///
/// The data-protection Keychain is used on every platform (on macOS it needs the app to be
/// signed with a keychain access group, as every sandboxed app is).
public final class KeychainSecretStore: SecretStore {
    /// The items' `kSecAttrService`.
    public let service: String
    /// A shared keychain access group, or nil for the app's default group.
    public let accessGroup: String?

    public init(service: String = "app.carepass", accessGroup: String? = nil) {
        self.service = service
        self.accessGroup = accessGroup
    }

    public func load(name: String) throws -> Data? {
        var query = itemQuery(name)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne

        var result: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &result)
        switch status {
        case errSecSuccess:
            guard let data = result as? Data else {
                throw PlatformError.Failed(reason: "keychain item \(name) holds no data")
            }
            return data
        case errSecItemNotFound:
            return nil
        default:
            throw Self.failure("reading keychain item \(name)", status)
        }
    }

    public func save(name: String, value: Data) throws {
        let query = itemQuery(name)
        let attributes: [String: Any] = [
            kSecValueData as String: value,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
        ]

        var status = SecItemUpdate(query as CFDictionary, attributes as CFDictionary)
        if status == errSecItemNotFound {
            let item = query.merging(attributes) { _, new in new }
            status = SecItemAdd(item as CFDictionary, nil)
            if status == errSecDuplicateItem {
                // Added by another thread between our update and add.
                status = SecItemUpdate(query as CFDictionary, attributes as CFDictionary)
            }
        }
        guard status == errSecSuccess else {
            throw Self.failure("writing keychain item \(name)", status)
        }
    }

    /// Deletes every item this store wrote (for an app's "remove all my data").
    public func removeAll() throws {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecUseDataProtectionKeychain as String: true,
        ]
        if let accessGroup {
            query[kSecAttrAccessGroup as String] = accessGroup
        }
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw Self.failure("deleting keychain items", status)
        }
    }

    private func itemQuery(_ name: String) -> [String: Any] {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: name,
            kSecUseDataProtectionKeychain as String: true,
        ]
        if let accessGroup {
            query[kSecAttrAccessGroup as String] = accessGroup
        }
        return query
    }

    private static func failure(_ what: String, _ status: OSStatus) -> PlatformError {
        let message = (SecCopyErrorMessageString(status, nil) as String?) ?? "no description"
        return PlatformError.Failed(reason: "\(what): OSStatus \(status) (\(message))")
    }
}
#endif
