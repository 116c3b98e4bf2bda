// `MemorySecretStore`: a `SecretStore` in memory, for tests. (An unsigned `swift test` runner
// has no keychain access group, so the real Keychain store is not usable there.)

import Foundation
import CarePassFFI

/// Keeps secrets in a dictionary for the life of the object. Reopening a store needs the same
/// instance: it holds the store's data key.
final class MemorySecretStore: SecretStore, @unchecked Sendable {
    // @unchecked: `values` is only touched with `lock` held.

    private let lock = NSLock()
    private var values: [String: Data] = [:]

    func load(name: String) throws -> Data? {
        lock.lock()
        defer { lock.unlock() }
        return values[name]
    }

    func save(name: String, value: Data) throws {
        lock.lock()
        defer { lock.unlock() }
        values[name] = value
    }
}
