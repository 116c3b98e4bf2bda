package app.carepass

import java.util.concurrent.ConcurrentHashMap

/**
 * A [SecretStore] in memory, for tests and previews: its secrets end with the process, and so
 * does access to any store opened with it. Apps use `KeystoreSecretStore`.
 */
class InMemorySecretStore : SecretStore {
    private val values = ConcurrentHashMap<String, ByteArray>()

    override fun load(name: String): ByteArray? = values[name]?.copyOf()

    override fun save(name: String, value: ByteArray) {
        values[name] = value.copyOf()
    }

    /** The names currently held. */
    val names: Set<String>
        get() = values.keys.toSet()
}
