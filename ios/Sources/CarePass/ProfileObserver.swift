// `ProfileObserver`: the signed-in profile as an `ObservableObject` for SwiftUI, fed by
// `CarePassClient.profiles`.

import Combine
import CarePassFFI

/// The signed-in person for SwiftUI views: `@Published`, updated on the main actor.
///
/// ```swift
/// @StateObject private var session = ProfileObserver(client: client)
/// … if let profile = session.profile { Text(profile.name) } else { SignInView() }
/// ```
@MainActor
public final class ProfileObserver: ObservableObject {
    /// The signed-in person, or nil.
    @Published public private(set) var profile: Profile?

    private var updates: Task<Void, Never>?

    public init(client: CarePassClient) {
        profile = client.profile
        let stream = client.profiles
        updates = Task { [weak self] in
            for await profile in stream {
                guard let self else { return }
                self.profile = profile
            }
        }
    }

    deinit {
        updates?.cancel()
    }
}
