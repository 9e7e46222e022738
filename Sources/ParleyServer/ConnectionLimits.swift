import Foundation
import Synchronization

/// Rate limits on connection attempts (per user and per address, fixed windows) and the cap
/// on open connections per user.
final class ConnectionLimits: Sendable {
    private struct Window {
        var start: ContinuousClock.Instant
        var count: Int
    }

    private struct State {
        var attempts: [String: Window] = [:]
        var open: [String: Int] = [:]
    }

    private let state = Mutex(State())
    let settings: ServerSettings

    init(settings: ServerSettings) { self.settings = settings }

    /// Counts an attempt; false when the key used up its window.
    func attempt(address: String) -> Bool {
        attempt(key: "a:" + address, limit: settings.connectAttemptsPerAddress)
    }

    func attempt(userID: String) -> Bool {
        attempt(key: "u:" + userID, limit: settings.connectAttemptsPerUser)
    }

    private func attempt(key: String, limit: Int) -> Bool {
        let now = ContinuousClock.now
        let window = Duration.milliseconds(Int64(settings.connectWindow * 1000))
        return state.withLock { state in
            if state.attempts.count > 50_000 {
                state.attempts = state.attempts.filter { now - $0.value.start < window }
            }
            var entry = state.attempts[key] ?? Window(start: now, count: 0)
            if now - entry.start >= window { entry = Window(start: now, count: 0) }
            entry.count += 1
            state.attempts[key] = entry
            return entry.count <= limit
        }
    }

    /// Takes one of the user's connection slots; false at the cap.
    func open(userID: String) -> Bool {
        state.withLock { state in
            let count = state.open[userID, default: 0]
            guard count < settings.maxConnectionsPerUser else { return false }
            state.open[userID] = count + 1
            return true
        }
    }

    func close(userID: String) {
        state.withLock { state in
            let count = state.open[userID, default: 1] - 1
            state.open[userID] = count > 0 ? count : nil
        }
    }
}
