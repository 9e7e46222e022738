import Logging
import NIOCore
import ParleyHub
import ServiceLifecycle
import Synchronization

/// Runs first at shutdown (it is the last service of the group): refuses new WebSockets,
/// closes the open ones with 1001 and gives them a moment to go, before the HTTP server stops
/// and the job runner cancels running pipelines.
final class ServerLifecycle: Service {
    let hub: Hub
    let logger: Logger
    private let stopping = Atomic<Bool>(false)

    init(hub: Hub, logger: Logger) {
        self.hub = hub
        self.logger = logger
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func run() async throws {
        try? await gracefulShutdown()
        stopping.store(true, ordering: .relaxed)
        let groups = hub.openGroups
        logger.info("closing websockets", metadata: ["meetings and feeds": "\(groups.count)"])
        for group in groups { group.closeAll(.shutdown) }
        // Give the close frames a moment to go out; clients reconnect with `since` later.
        for _ in 0..<50 where hub.openGroups.contains(where: { $0.subscriberCount > 0 }) {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Runs `tick` every `interval` seconds until the graceful shutdown.
struct PeriodicService: Service {
    let interval: Double
    let tick: @Sendable () async -> Void

    func run() async throws {
        while !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
                }
            } catch {
                return
            }
            await tick()
        }
    }

    /// Every `keepalive` seconds, a `{"type":"ping"}` and a WebSocket ping frame to every
    /// watcher; a watcher silent for two intervals (not even a pong) is closed with 1001.
    static func keepalive(hub: Hub, interval: Double) -> Self {
        PeriodicService(interval: interval) {
            let silence = TimeAmount.milliseconds(Int64(interval * 2000))
            for group in hub.openGroups { group.keepalive(silentAfter: silence) }
        }
    }

    /// Every sweep, ends the recordings of people who may no longer edit their meeting
    /// (`MeetingService.closeRecordingsWithoutAccess`).
    static func recordingAccess(meetings: MeetingService, interval: Double) -> Self {
        PeriodicService(interval: interval) { await meetings.closeRecordingsWithoutAccess() }
    }
}
