// `CarePassNotificationService`: a Notification Service Extension that hands a CarePass
// doorbell to the core, opened with `extension = true`, and words the notification from what
// the core pulled. The core never opens its database in this process (its first open costs
// about 22 MB, the extension's limit is about 24 MB): it verifies the doorbell, pulls the
// change and leaves it in the store's sealed spool, which the app applies the next time it
// uses its database. See ios/README.md, "The Notification Service Extension".
//
// Apple only (UserNotifications); an empty module elsewhere.

#if canImport(UserNotifications)
import Foundation
@preconcurrency import UserNotifications
import CarePass

/// The base class of the app's Notification Service Extension.
///
/// In the extension target (`NSExtensionPrincipalClass` = `$(PRODUCT_MODULE_NAME).NotificationService`):
///
/// ```swift
/// import CarePassNotificationExtension
///
/// final class NotificationService: CarePassNotificationService {}
/// ```
///
/// with these keys in the extension's Info.plist (or override `makeClient()`):
/// `CarePassServerURL` (the platform), `CarePassAppGroup` (the app group whose container
/// holds the data directory; the app opens `CarePassConfig.sharedDataDirectory(appGroup:)`
/// too) and, optionally, `CarePassKeychainAccessGroup` (the keychain access group that
/// holds the store's data key, shared with the app). The push must be sent with
/// `mutable-content: 1` and an alert, so that iOS starts the extension.
///
/// What it does after a failure follows the facade's rule: when `handlePush` throws, the
/// notification is shown as it arrived, and nothing else is tried.
open class CarePassNotificationService: UNNotificationServiceExtension {
    private let delivery = Delivery()

    /// The core for this extension: opened with `inExtension: true` on the app group's data
    /// directory, the shared keychain, and a device key store that refuses to sign (the
    /// extension never signs; handing the core no key store would make it create a software
    /// key).
    open func makeClient() throws -> CarePassClient {
        let info = Bundle.main.infoDictionary ?? [:]
        guard let server = info["CarePassServerURL"] as? String, let appGroup = info["CarePassAppGroup"] as? String else {
            throw CocoaError(.keyValueValidation, userInfo: [
                NSLocalizedDescriptionKey: "the extension's Info.plist needs CarePassServerURL and CarePassAppGroup",
            ])
        }
        let config = try CarePassConfig.app(
            serverURL: server,
            deviceName: "CarePass notification extension",
            dataDirectory: CarePassConfig.sharedDataDirectory(appGroup: appGroup),
            inExtension: true
        )
        return try CarePassClient(
            config: config,
            secretStore: KeychainSecretStore(accessGroup: info["CarePassKeychainAccessGroup"] as? String),
            keyStore: ExtensionDeviceKey(),
            logger: OSLogLogger(category: "extension")
        )
    }

    /// The notification to show for what `handlePush` returned. The default names the
    /// hospital of the first new bill; override it to localise. No amounts: formatting money
    /// is the core's, and a doorbell's notification needs none.
    open func content(for result: PushResult, replacing original: UNMutableNotificationContent) -> UNNotificationContent {
        guard case .pulled(let changes) = result, let first = changes.first else {
            return original
        }
        original.title = first.bill.hospital
        original.body = changes.count == 1
            ? "A new bill from \(first.bill.department)"
            : "\(changes.count) bills changed"
        return original
    }

    open override func didReceive(
        _ request: UNNotificationRequest,
        withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
    ) {
        let original = (request.content.mutableCopy() as? UNMutableNotificationContent) ?? UNMutableNotificationContent()
        delivery.start(contentHandler, fallback: original)
        let userInfo = request.content.userInfo
        guard CarePassClient.isCarePassPush(userInfo: userInfo) else {
            delivery.finish(original)
            return
        }
        let delivery = self.delivery
        delivery.work = Task {
            do {
                let client = try self.makeClient()
                defer { client.close() }
                let result = try await client.handlePush(userInfo: userInfo)
                delivery.finish(self.content(for: result, replacing: original))
            } catch {
                delivery.finish(original)
            }
        }
    }

    open override func serviceExtensionTimeWillExpire() {
        delivery.work?.cancel()
        delivery.finishWithFallback()
    }
}

/// A `DeviceKeyStore` for the extension, which never signs: both calls fail.
public final class ExtensionDeviceKey: DeviceKeyStore {
    public init() {}

    public func publicKey() throws -> Data {
        throw PlatformError.Failed(reason: "the notification extension does not use the device key")
    }

    public func sign(message: Data) throws -> Data {
        throw PlatformError.Failed(reason: "the notification extension does not use the device key")
    }
}

/// Calls the content handler exactly once, whichever comes first: the core's answer or the
/// system's deadline.
private final class Delivery: @unchecked Sendable {
    // @unchecked: every stored property is only touched with `lock` held.

    private let lock = NSLock()
    private var handler: ((UNNotificationContent) -> Void)?
    private var fallback: UNNotificationContent?
    private var running: Task<Void, Never>?

    var work: Task<Void, Never>? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return running
        }
        set {
            lock.lock()
            running = newValue
            lock.unlock()
        }
    }

    func start(_ handler: @escaping (UNNotificationContent) -> Void, fallback: UNNotificationContent) {
        lock.lock()
        self.handler = handler
        self.fallback = fallback
        lock.unlock()
    }

    func finish(_ content: UNNotificationContent) {
        lock.lock()
        let handler = self.handler
        self.handler = nil
        lock.unlock()
        handler?(content)
    }

    func finishWithFallback() {
        lock.lock()
        let handler = self.handler
        let fallback = self.fallback
        self.handler = nil
        lock.unlock()
        if let handler, let fallback {
            handler(fallback)
        }
    }
}
#endif
