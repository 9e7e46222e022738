public import Foundation
public import Logging
import NIOCore
public import ParleyEvents
public import ParleyStore
public import ServiceLifecycle
import Synchronization

/// Settings of the hub; the server fills them from its configuration.
public struct HubConfiguration: Sendable {
    /// Messages queued per connection before it is closed as too slow.
    public var sendQueue: Int
    /// Events per meeting kept in memory for replay without the store.
    public var recentEvents: Int
    /// How long a write waits for a store that is down (a database restarting) before the
    /// publisher gets the error.
    public var storeOutage: Duration
    /// How often open channels compare their position with the store's when other processes
    /// share it: the bound on the delay a lost notification can cause.
    public var sweepInterval: Duration
    /// Viewers of a process not heard from for this long (each sweep renews a process's own)
    /// stop counting: a process that died does not leave ghosts.
    public var presenceTimeout: Duration
    /// Whether the hub listens to the store's notifications (tests turn it off to show that the
    /// sweep alone catches up).
    var listensForChanges = true
    /// Whether each sweep closes the sockets of viewers who may no longer see their meeting
    /// (removed from its members on another node): the server's hub, whose every viewer was
    /// the meeting's owner or a member when it connected. Off for hubs whose viewers are not
    /// accounts (the hub's own tests).
    public var enforcesAccess = false

    public init(
        sendQueue: Int = 4096, recentEvents: Int = 2048, storeOutage: Duration = .seconds(60),
        sweepInterval: Duration = .seconds(2), presenceTimeout: Duration = .seconds(10)
    ) {
        self.sendQueue = sendQueue
        self.recentEvents = recentEvents
        self.storeOutage = storeOutage
        self.sweepInterval = sweepInterval
        self.presenceTimeout = presenceTimeout
    }
}

/// The meetings' live channels. A channel exists while someone publishes to it or watches it.
///
/// Publishing and subscribing run in the caller's task. What runs in the background (catching
/// up from the store, sharing presence, following other processes through a shared database,
/// the periodic sweep) runs in ``run()``'s task group: the hub is a ServiceLifecycle `Service`,
/// and once `run()` returns nothing of it runs any more. Run it once, for as long as its store
/// is open, and close the store after `run()` returned.
public final class Hub: Service, Sendable {
    public let store: any Store
    public let configuration: HubConfiguration
    let metrics = HubMetrics()
    let loops = DeliveryLoops()
    let logger: Logger
    let work = HubWorkQueue()
    /// A signal each time another process queued or released a job, and when the notifications
    /// resumed after an interruption (anything may have been queued meanwhile): for this
    /// process's job queue, its one reader.
    public let jobsChanged: AsyncStream<Void>
    private let jobsChangedSignal: AsyncStream<Void>.Continuation

    private struct Entry {
        var channel: MeetingChannel
        var users = 0
    }

    private let channels = Mutex<[String: Entry]>([:])
    let feeds = Mutex<[String: FeedEntry]>([:])

    struct FeedEntry {
        var feed: UserFeed
        var users = 0
    }

    /// This process's name in what it shares through the store (presence).
    public let node: String
    let appendWatchers = AppendWatchers()

    /// Calls `watcher` after each append through this process's channels, with the meeting,
    /// its log's epoch and the events (not after other processes' appends), on the appending
    /// task: it must return at once.
    public func onAppend(
        _ watcher: @escaping @Sendable (_ meetingID: String, _ epoch: String, _ events: [MeetingEvent]) -> Void
    ) {
        appendWatchers.add(watcher)
    }

    public init(
        store: any Store, configuration: HubConfiguration = .init(), node: String = NodeIdentity.current, logger: Logger
    ) {
        self.store = store
        self.configuration = configuration
        self.node = node
        self.logger = logger
        (jobsChanged, jobsChangedSignal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
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

    /// Closes the sockets a session opened, on every meeting this process serves (a logout).
    public func closeSessions(_ sessions: Set<String>) {
        for group in openGroups { group.closeSessions(sessions) }
    }

    /// Every open meeting channel and user feed: every socket this process serves.
    public var openGroups: [any SubscriberGroup] { openChannels + openFeeds }

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
        // The store's position is the truth: another process may have reset or extended the log.
        let position =
            try await store.logPositions(meetingIDs: [meetingID])[meetingID] ?? LogPosition(epoch: epoch, latest: 0)
        let fresh = MeetingChannel(
            meetingID: meetingID, epoch: position.epoch, latestOffset: position.latest, store: store,
            configuration: configuration, metrics: metrics, loops: loops, logger: logger,
            presenceNode: store.isShared ? node : nil, work: work, appendWatchers: appendWatchers)
        let (channel, opened) = channels.withLock { channels in
            // Someone may have opened it while the store was read: theirs wins.
            let opened = channels[meetingID] == nil
            var entry = channels[meetingID] ?? Entry(channel: fresh)
            entry.users += 1
            channels[meetingID] = entry
            return (entry.channel, opened)
        }
        // Viewers already watching through other processes.
        if opened && store.isShared { _ = work.submit(HubWork(.refreshPresence, channel)) }
        return channel
    }

    public func release(meetingID: String) {
        channels.withLock { channels in
            guard var entry = channels[meetingID] else { return }
            entry.users -= 1
            if entry.users <= 0 { channels[meetingID] = nil } else { channels[meetingID] = entry }
        }
    }
}

extension Hub {
    /// Reads who watches the channels' meetings through other processes (those heard from
    /// within `presenceTimeout`) and hands it to each channel.
    func refreshPresence(of channels: [MeetingChannel]) async {
        do {
            let since = Date().addingTimeInterval(-Double(configuration.presenceTimeout.components.seconds))
            let remote = try await store.presence(
                meetingIDs: channels.map(\.meetingID), excluding: node, since: since)
            for channel in channels {
                channel.observeRemoteViewers(
                    Set((remote[channel.meetingID] ?? []).map { Viewer(userID: $0.userID, username: $0.username) }))
            }
        } catch {
            logger.warning("cannot read presence from the store", metadata: ["error": "\(store.describe(error))"])
        }
    }

    /// Runs the channels' background work and, with a store other processes share, follows
    /// their changes (appended events and presence as each notification comes, every channel
    /// after the notifications were interrupted and each `sweepInterval`: a lost notification
    /// delays, never loses). Returns on graceful shutdown or cancellation, after every child
    /// task ended; work submitted later is dropped.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            if store.isShared {
                if configuration.listensForChanges {
                    group.addTask { await self.store.followChanges { await self.handle($0) } }
                }
                group.addTask {
                    while (try? await Task.sleep(for: self.configuration.sweepInterval)) != nil { await self.sweep() }
                }
            }
            for await item in work.items.cancelOnGracefulShutdown() {
                group.addTask { await self.perform(item) }
            }
            work.close()
            group.cancelAll()
        }
    }

    private func perform(_ item: HubWork) async {
        if item.kind == .fillFeed {
            await item.feed?.fill()
            return
        }
        guard let channel = item.channel else { return }  // closed meanwhile
        switch item.kind {
        case .fill: await channel.fill()
        case .resynchronize: await channel.resynchronize()
        case .sharePresence: await channel.writePresence()
        case .refreshPresence: await refreshPresence(of: [channel])
        case .fillFeed: break
        }
    }

    private func handle(_ change: StoreChange) async {
        switch change {
        case .appended(let meetingID, let position): openChannel(meetingID: meetingID)?.observe(position)
        case .userFeed(let userID, let position): openFeed(userID: userID)?.observe(position)
        case .presence(let meetingID):
            if let channel = openChannel(meetingID: meetingID) { await refreshPresence(of: [channel]) }
        case .ephemeral(let meetingID, let from, let message) where from != node:
            openChannel(meetingID: meetingID)?.broadcastUnnumbered(ByteBuffer(string: message))
        case .ephemeral:
            break  // this process's own
        case .resumed:
            await sweep()
            jobsChangedSignal.yield()
        case .jobQueued:
            jobsChangedSignal.yield()
        }
    }

    /// Compares every open channel with the store (a meeting deleted elsewhere closes its
    /// subscribers, a member removed or a session logged out elsewhere loses theirs), keeps
    /// this process's presence rows current and reads the others'.
    func sweep() async {
        do {
            try await store.touchPresence(node: node, at: Date())
        } catch {
            logger.warning("cannot renew this node's presence", metadata: ["error": "\(store.describe(error))"])
        }
        await sweepFeeds()
        let channels = openChannels
        guard !channels.isEmpty else { return }
        for channel in channels { channel.retrySharingPresence() }
        await refreshPresence(of: channels)
        do {
            let ids = channels.map(\.meetingID)
            let positions = try await store.logPositions(meetingIDs: ids)
            // Who may still watch: a member removed on another node loses the socket here.
            let viewers = configuration.enforcesAccess ? try await store.viewers(meetingIDs: ids) : [:]
            // Sessions that logged out on another node lose their sockets here.
            let sessions = channels.reduce(into: Set<String>()) { $0.formUnion($1.sessions) }
            let loggedOut = sessions.isEmpty ? [] : try await store.revokedFamilies(Array(sessions))
            for channel in channels {
                if let position = positions[channel.meetingID] {
                    channel.observe(position)
                    if configuration.enforcesAccess { channel.closeViewers(notIn: viewers[channel.meetingID] ?? []) }
                    if !loggedOut.isEmpty { channel.closeSessions(loggedOut) }
                } else {
                    channel.closeAll(.meetingDeleted)
                }
            }
        } catch {
            logger.warning(
                "cannot compare the open meetings with the store", metadata: ["error": "\(store.describe(error))"])
        }
    }
}

/// Who is told of appends (``Hub/onAppend(_:)``).
final class AppendWatchers: Sendable {
    private let watchers = Mutex<[@Sendable (String, String, [MeetingEvent]) -> Void]>([])

    func add(_ watcher: @escaping @Sendable (String, String, [MeetingEvent]) -> Void) {
        watchers.withLock { $0.append(watcher) }
    }

    func appended(meetingID: String, epoch: String, events: [MeetingEvent]) {
        for watcher in watchers.withLock({ $0 }) { watcher(meetingID, epoch, events) }
    }
}
