public import Logging
public import ParleyStore
import Synchronization

/// Settings of the hub; the server fills them from its configuration.
public struct HubConfiguration: Sendable {
    /// Messages queued per connection before it is closed as too slow.
    public var sendQueue: Int
    /// Events per meeting kept in memory for replay without the store.
    public var recentEvents: Int

    public init(sendQueue: Int = 4096, recentEvents: Int = 2048) {
        self.sendQueue = sendQueue
        self.recentEvents = recentEvents
    }
}

/// The meetings' live channels. A channel exists while someone publishes to it or watches it.
public final class Hub: Sendable {
    public let store: any Store
    public let configuration: HubConfiguration
    let metrics = HubMetrics()
    let loops = DeliveryLoops()
    let logger: Logger

    private struct Entry {
        var channel: MeetingChannel
        var users = 0
    }

    private let channels = Mutex<[String: Entry]>([:])

    public init(store: any Store, configuration: HubConfiguration = .init(), logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs `body` with the meeting's channel, opened from the store if nobody has it open.
    public func withChannel<T: Sendable>(
        meetingID: String, epoch: String, _ body: (MeetingChannel) async throws -> T
    ) async throws -> T {
        let channel = try await acquire(meetingID: meetingID, epoch: epoch)
        defer { release(meetingID: meetingID) }
        return try await body(channel)
    }

    /// The open channel of a meeting, if any (to close its sockets when it is deleted).
    public func openChannel(meetingID: String) -> MeetingChannel? {
        channels.withLock { $0[meetingID]?.channel }
    }

    public var openChannels: [MeetingChannel] { channels.withLock { $0.values.map(\.channel) } }

    /// Opens (or joins) the meeting's channel; every `acquire` needs one `release`. Prefer
    /// `withChannel` where the use fits in one scope.
    public func acquire(meetingID: String, epoch: String) async throws -> MeetingChannel {
        if let channel = channels.withLock({ channels -> MeetingChannel? in
            guard var entry = channels[meetingID] else { return nil }
            entry.users += 1
            channels[meetingID] = entry
            return entry.channel
        }) {
            return channel
        }
        let latest = try await store.latestOffset(meetingID: meetingID)
        let fresh = MeetingChannel(
            meetingID: meetingID, epoch: epoch, latestOffset: latest, store: store, configuration: configuration,
            metrics: metrics, loops: loops, logger: logger)
        return channels.withLock { channels in
            // Someone may have opened it while the store was read: theirs wins.
            var entry = channels[meetingID] ?? Entry(channel: fresh)
            entry.users += 1
            channels[meetingID] = entry
            return entry.channel
        }
    }

    public func release(meetingID: String) {
        channels.withLock { channels in
            guard var entry = channels[meetingID] else { return }
            entry.users -= 1
            if entry.users <= 0 { channels[meetingID] = nil } else { channels[meetingID] = entry }
        }
    }
}
