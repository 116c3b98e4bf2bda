// `SecureEnclaveDeviceKey`: the core's `DeviceKeyStore`, a P-256 signing key generated in
// the Secure Enclave and kept in the Keychain under an application tag; a software key in
// the Keychain where there is no Secure Enclave (the simulator).
//
// Apple only (the Security framework); not compiled on Linux.

#if canImport(Security)
import Foundation
import Security
#if canImport(CryptoKit)
import CryptoKit
#endif
import CarePassFFI

/// The device's P-256 key. In the Secure Enclave its private half never leaves the chip; the
/// Keychain keeps only a reference, found again by `applicationTag`. The key is created on
/// first use (the first enrolment) and usable after the first unlock, on this device only.
///
/// On the simulator, and on Macs without a Secure Enclave, the key is an ordinary P-256 key
/// stored in the Keychain with the same tag and accessibility.
public final class SecureEnclaveDeviceKey: DeviceKeyStore, @unchecked Sendable {
    // @unchecked: `cachedKey` is only touched with `lock` held; SecKey is thread-safe.

    /// The key's `kSecAttrApplicationTag`.
    public let applicationTag: Data

    private let lock = NSLock()
    private var cachedKey: SecKey?

    public init(applicationTag: String = "app.carepass.device-key") {
        self.applicationTag = Data(applicationTag.utf8)
    }

    /// Whether new keys are created in the Secure Enclave here.
    public static var isSecureEnclaveAvailable: Bool {
        #if targetEnvironment(simulator)
        return false
        #elseif canImport(CryptoKit)
        return SecureEnclave.isAvailable
        #else
        return false
        #endif
    }

    /// The public key as the 65-byte X9.63 / SEC1 uncompressed point (0x04 ‖ X ‖ Y).
    public func publicKey() throws -> Data {
        let privateKey = try key()
        guard let publicHalf = SecKeyCopyPublicKey(privateKey) else {
            throw PlatformError.Failed(reason: "the device key has no public key")
        }
        var error: Unmanaged<CFError>?
        guard let data = SecKeyCopyExternalRepresentation(publicHalf, &error) as Data? else {
            throw Self.failure("exporting the device public key", error)
        }
        guard data.count == 65, data.first == 0x04 else {
            throw PlatformError.Failed(reason: "the device public key is not an uncompressed P-256 point (\(data.count) bytes)")
        }
        return data
    }

    /// ECDSA P-256 over SHA-256 of `message` (Security hashes it); a DER signature, which the
    /// core accepts.
    public func sign(message: Data) throws -> Data {
        let privateKey = try key()
        var error: Unmanaged<CFError>?
        guard let signature = SecKeyCreateSignature(
            privateKey,
            .ecdsaSignatureMessageX962SHA256,
            message as CFData,
            &error
        ) as Data? else {
            throw Self.failure("signing with the device key", error)
        }
        return signature
    }

    /// Deletes the key (for an app's "remove all my data"). The device then has to enrol
    /// again: the platform knows it by this key.
    public func deleteKey() throws {
        lock.lock()
        defer { lock.unlock() }
        var query = keyQuery()
        query.removeValue(forKey: kSecReturnRef as String)
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw Self.failure("deleting the device key", status)
        }
        cachedKey = nil
    }

    // MARK: - Internals

    /// The private key: cached, else found in the Keychain, else created.
    private func key() throws -> SecKey {
        lock.lock()
        defer { lock.unlock() }
        if let cachedKey {
            return cachedKey
        }
        let key = try loadKey() ?? createKey()
        cachedKey = key
        return key
    }

    private func keyQuery() -> [String: Any] {
        [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeyClass as String: kSecAttrKeyClassPrivate,
            kSecAttrApplicationTag as String: applicationTag,
            kSecUseDataProtectionKeychain as String: true,
            kSecReturnRef as String: true,
        ]
    }

    private func loadKey() throws -> SecKey? {
        var result: CFTypeRef?
        let status = SecItemCopyMatching(keyQuery() as CFDictionary, &result)
        switch status {
        case errSecSuccess:
            guard let item = result, CFGetTypeID(item) == SecKeyGetTypeID() else {
                throw PlatformError.Failed(reason: "the keychain item tagged as the device key is not a key")
            }
            return (item as! SecKey)
        case errSecItemNotFound:
            return nil
        default:
            throw Self.failure("looking up the device key", status)
        }
    }

    private func createKey() throws -> SecKey {
        let inSecureEnclave = Self.isSecureEnclaveAvailable
        // A Secure Enclave key must allow private-key use; no user presence is asked for, as
        // the core signs log-in challenges without a prompt.
        let flags: SecAccessControlCreateFlags = inSecureEnclave ? [.privateKeyUsage] : []
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault,
            kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            flags,
            &error
        ) else {
            throw Self.failure("creating the device key's access control", error)
        }

        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecUseDataProtectionKeychain as String: true,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: applicationTag,
                kSecAttrAccessControl as String: access,
            ] as [String: Any],
        ]
        if inSecureEnclave {
            attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        }

        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw Self.failure("creating the device key", error)
        }
        return key
    }

    private static func failure(_ what: String, _ error: Unmanaged<CFError>?) -> PlatformError {
        guard let cfError = error?.takeRetainedValue() else {
            return PlatformError.Failed(reason: "\(what): unknown error")
        }
        let nsError = cfError as Error as NSError
        return PlatformError.Failed(reason: "\(what): \(nsError.domain) \(nsError.code) (\(nsError.localizedDescription))")
    }

    private static func failure(_ what: String, _ status: OSStatus) -> PlatformError {
        let message = (SecCopyErrorMessageString(status, nil) as String?) ?? "no description"
        return PlatformError.Failed(reason: "\(what): OSStatus \(status) (\(message))")
    }
}
#endif
