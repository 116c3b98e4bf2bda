// `OSLogLogger`: the core's `Logger`, writing its lines to the unified log (os.Logger), where
// Console.app and `log stream --predicate 'subsystem == "app.carepass"'` show them.
//
// Apple only (the unified log); not compiled on Linux.

#if canImport(os)
import os
import CarePassFFI

// Both `os` and `CarePassFFI` declare a `Logger`; this file always says which one.

/// Forwards the core's log lines to `os.Logger`. The core never puts personal data in its
/// log lines, so they are logged as public (readable outside a debugger).
public final class OSLogLogger: CarePassFFI.Logger, @unchecked Sendable {
    // @unchecked: os.Logger is thread-safe, whether or not this SDK marks it Sendable.

    private let logger: os.Logger

    public init(subsystem: String = "app.carepass", category: String = "core") {
        self.logger = os.Logger(subsystem: subsystem, category: category)
    }

    public func log(level: CarePassFFI.LogLevel, target: String, message: String) {
        switch level {
        case .error:
            logger.error("\(target, privacy: .public): \(message, privacy: .public)")
        case .warn:
            logger.warning("\(target, privacy: .public): \(message, privacy: .public)")
        case .info:
            logger.info("\(target, privacy: .public): \(message, privacy: .public)")
        case .debug:
            logger.debug("\(target, privacy: .public): \(message, privacy: .public)")
        }
    }
}
#endif
