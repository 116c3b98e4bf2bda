package app.carepass

// The types an app needs, re-exported under `app.carepass` so that apps import the facade
// package only. The declarations live in the uniffi-generated `app.carepass.ffi` package.

/**
 * Every error a CarePass call reports. A sealed class: `when` over it is exhaustive.
 *
 * Each subclass has a `reason`, a sentence for developers (never personal data); the
 * subclass itself is the machine-readable kind the UI switches on:
 * `InvalidInput`, `InsecureServerUrl`, `Network`, `Timeout`, `Platform` (with the
 * platform's `code`), `InvalidServerAnswer`, `WrongVerificationCode`, `NotEnrolled`,
 * `NotSignedIn`, `SessionExpired`, `StoreTampered`, `WrongDataKey`, `Storage`, `KeyStore`,
 * `Internal`.
 *
 * A typealias cannot reach nested classes, so code that matches the kinds imports the class
 * itself: `import app.carepass.ffi.CarePassException`, then
 * `catch (e: CarePassException.WrongVerificationCode)` or `when (e) { is CarePassException.Timeout -> … }`.
 */
typealias CarePassException = app.carepass.ffi.CarePassException

/** The signed-in person, as the app shows them (phone masked, age computed by the core). */
typealias Profile = app.carepass.ffi.Profile

/** The person's insurance scheme. */
typealias InsuranceType = app.carepass.ffi.InsuranceType

/** Where the core keeps its data key; see [InMemorySecretStore] and, on Android, `KeystoreSecretStore`. */
typealias SecretStore = app.carepass.ffi.SecretStore

/** The device's P-256 signing key; on Android, `AndroidKeystoreDeviceKey`. */
typealias DeviceKeyStore = app.carepass.ffi.DeviceKeyStore

/**
 * What [SecretStore] and [DeviceKeyStore] implementations throw when they fail
 * (`app.carepass.ffi.PlatformException.Failed`); the core reports it as
 * [CarePassException] `KeyStore`. Other exceptions are caught too, but their stack trace
 * becomes the reason.
 */
typealias PlatformException = app.carepass.ffi.PlatformException

/** Receives the core's log lines (they never contain personal data). Must not throw. */
typealias Logger = app.carepass.ffi.Logger

/** Level of a core log line. */
typealias LogLevel = app.carepass.ffi.LogLevel

/** The options [CarePassClient.open] passes to the core; build one with [carePassConfig]. */
typealias CarePassConfig = app.carepass.ffi.CarePassConfig
