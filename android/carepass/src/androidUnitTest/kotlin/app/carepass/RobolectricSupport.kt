package app.carepass

import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import kotlin.test.assertEquals

/*
 * Shared by the Robolectric tests (the *RobolectricTest classes, JUnit 4 on Android 14 through
 * Robolectric, run by the "robolectric" surefire execution of pom.xml in a JVM of their own).
 *
 * They all use the same @Config, so Robolectric builds one sandbox class loader for the whole
 * run: a second one would load the uniffi bindings again and register their callback tables
 * with the native library a second time.
 */

/** The Android SDK the Robolectric tests run on (pom.xml's android-all version). */
internal const val ROBOLECTRIC_SDK = 34

/**
 * A software AES-256 wrapping key in memory, standing in for the Android Keystore that
 * Robolectric does not emulate: [KeystoreSecretStore] runs its own code around it unchanged.
 * Keep one instance for as long as the keystore would keep its key (across a simulated process
 * death); [forget] is a keystore reset.
 */
internal class SoftwareWrappingKey : WrappingKey {
    @Volatile
    private var key: SecretKey? = null

    /** How many keys [create] made. */
    val created = AtomicInteger()

    override fun existing(): SecretKey? = key

    override fun create(): SecretKey = synchronized(this) {
        check(key == null) { "create() is only called when there is no key" }
        KeyGenerator.getInstance("AES").apply { init(256) }.generateKey().also {
            key = it
            created.incrementAndGet()
        }
    }

    /** Drops the key, as a keystore reset or a backup restored on another device would. */
    fun forget() {
        key = null
    }
}

/**
 * The data map of the one doorbell the sandbox's push relay handed [service] for [token] after
 * outbox entry [after]: what that push service would deliver to the app.
 */
@Suppress("UNCHECKED_CAST")
internal fun Sandbox.doorbell(service: String, token: String, after: Long): Map<String, String> {
    val (pushes, _) = pushOutbox(after)
    val push = pushes.map { it["push"] as Map<String, Any?> }.single { it["token"] == token }
    assertEquals(service, push["service"])
    return push["data"] as Map<String, String>
}

/** The id of a bill as the sandbox returns it. */
internal val Map<String, Any?>.billId: String
    get() = this["bill_id"] as String
