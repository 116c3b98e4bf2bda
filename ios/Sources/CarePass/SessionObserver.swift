// `SessionObserver`: the core's session stream as an `ObservableObject` for SwiftUI. Apple
// only (Combine); on Linux, iterate `CarePassClient.sessionStates()` directly.

#if canImport(Combine)
import Combine
import CarePassFFI

/// Who is signed in, for SwiftUI views: `@Published`, updated on the main actor, fed only by
/// the core's session stream (`CarePassClient.sessionStates()`).
///
/// ```swift
/// @StateObject private var session = SessionObserver(client: client)
/// … switch session.state {
///   case .signedIn(let profile): HomeView(profile: profile)
///   case .signedOut: SignInView()
///   case .ended: SignInView(message: "Please sign in again")
///   }
/// ```
@MainActor
public final class SessionObserver: ObservableObject {
    /// The session state, as the core's stream last said.
    @Published public private(set) var state: SessionState
    /// The error that ended the session stream (`CarePassError.Closed` once the client is
    /// closed); nil while it runs. Nothing follows it.
    @Published public private(set) var streamError: Error? = nil

    /// The signed-in person, when `state` is `.signedIn`.
    public var profile: Profile? {
        guard case .signedIn(let profile) = state else { return nil }
        return profile
    }

    /// Cancels the reading task when the observer goes away (which cancels the core's
    /// stream).
    private let reader = ReaderTask()

    public init(client: CarePassClient) {
        state = (try? client.sessionState) ?? .signedOut
        let states = client.sessionStates()
        reader.task = Task { [weak self] in
            do {
                for try await state in states {
                    self?.state = state
                }
            } catch {
                self?.streamError = error
            }
        }
    }
}

/// Holds the observer's reading task and cancels it on deinit.
private final class ReaderTask {
    var task: Task<Void, Never>?

    deinit {
        task?.cancel()
    }
}
#endif
