import Foundation
import Logging
import NIOCore
import ParleyEvents
public import ParleyStore
import Synchronization

/// One user's live feed (`/ws/user`): the notifications of their `UserFeedStore` feed, in
/// offset order, to each of the user's sockets on this process. Notifications are persisted
/// (by ``Hub/notify(_:)``, on any process) before anyone sees them; the feed reads what it
/// has not delivered from the store whenever it learns the feed moved on (this process's
/// appends, another's notification, the sweep), one read at a time, so every socket sees
/// every notification once, in order, and a reconnect with `since` and `epoch` replays the
/// rest.
public final class UserFeed: SubscriberGroup {
    public let userID: String
    let store: any Store
    let configuration: HubConfiguration
    let metrics: HubMetrics
    let loops: DeliveryLoops
    let logger: Logger
    let work: HubWorkQueue

    struct State {
        var order: DeliveryOrder
        var subscribers = SubscriberSet()
    }

    let state: Mutex<State>

    init(
        userID: String, position: LogPosition, store: any Store, configuration: HubConfiguration,
        metrics: HubMetrics, loops: DeliveryLoops, logger: Logger, work: HubWorkQueue
    ) {
        self.userID = userID
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.loops = loops
        self.logger = logger
        self.work = work
        // A feed is read rarely and kept short: memory for a few reconnects, the store for more.
        state = Mutex(
            State(
                order: DeliveryOrder(
                    epoch: position.epoch, latest: position.latest, keep: min(configuration.recentEvents, 64))))
    }

    public var epoch: String { state.withLock { $0.order.epoch } }
    public var latestOffset: Int { state.withLock { $0.order.published } }
    public var subscribers: [Subscriber] { state.withLock { $0.subscribers.everyone() } }

    /// Registers a socket and queues, in order: `connected`, then (when `since` is given, the
    /// feed is the one the client knew and the store still keeps what followed) every
    /// notification after `since`, then live ones; `recovered: false` tells the client to read
    /// its lists again.
    public func subscribe(
        viewer: Viewer, session: String?, since: Int?, epoch clientEpoch: String?, outlet: (any Outlet)? = nil
    ) async throws -> Subscriber {
        let loop = outlet.map { loops.loop(for: $0.eventLoop) }
        let (subscriber, latest, epoch, recovers, fromMemory) = state.withLock { state in
            let subscriber = Subscriber(
                id: state.subscribers.newID(), viewer: viewer, session: session, capacity: configuration.sendQueue,
                outlet: outlet, loop: loop)
            state.subscribers.insert(subscriber)
            let recovers = state.order.recovers(since: since, epoch: clientEpoch)
            return (
                subscriber, state.order.published, state.order.epoch, recovers,
                recovers ? state.order.kept(after: since ?? 0) : nil
            )
        }
        metrics.userConnected()
        var recovered = recovers
        var replay: [ByteBuffer] = []
        if recovers, let since {
            if let fromMemory {
                replay = fromMemory
            } else {
                do {
                    let stored = try await store.notifications(userID: userID, after: since, through: latest)
                    // Older notifications than the store keeps: the client starts over.
                    recovered = stored.count == latest - since
                    replay = recovered ? stored.map { ByteBuffer(string: $0.json) } : []
                } catch {
                    unsubscribe(subscriber, reason: .shutdown)
                    throw error
                }
            }
        }
        let connected = FeedConnected(
            userID: userID, offset: latest, epoch: epoch, recovered: recovered,
            timestamp: MeetingEvent.formatTimestamp(Date()))
        subscriber.start(with: [MeetingChannel.message(connected)] + replay)
        return subscriber
    }

    /// Removes a subscriber (its connection ended).
    public func unsubscribe(_ subscriber: Subscriber, reason: CloseReason) {
        subscriber.close(reason)
        if state.withLock({ $0.subscribers.remove(subscriber) }) { metrics.userDisconnected() }
    }

    /// The feed reached `position` (in the store): delivers what is missing. A new epoch (the
    /// database was restored, say) closes every socket with `logReset`.
    public func observe(_ position: LogPosition) {
        let (reset, fill) = state.withLock { state in
            (state.order.observe(epoch: position.epoch, latest: position.latest), state.order.claimFill(writing: false))
        }
        if reset { closeAll(.logReset) }
        if fill, !work.submit(HubWork(fill: self)) { state.withLock { $0.order.stopFilling() } }
    }

    /// Reads from the store what this feed has not delivered and delivers it, until it has
    /// caught up (the hub runs it, one at a time). A failed read stops; the sweep resumes.
    func fill() async {
        while let range = state.withLock({ $0.order.nextRead() }) {
            let stored: [StoredNotification]
            do {
                stored = try await store.notifications(userID: userID, after: range.after, through: range.through)
            } catch {
                logger.warning(
                    "cannot read a user's notifications", metadata: ["error": "\(store.describe(error))"])
                state.withLock { $0.order.stopFilling() }
                return
            }
            if (stored.first?.offset ?? .max) > range.after + 1 {
                // Removed from the store before this process read them (more than it keeps
                // arrived at once): the sockets cannot be given them, so they start over.
                state.withLock { state in
                    state.order = DeliveryOrder(epoch: range.epoch, latest: range.through, keep: state.order.keep)
                }
                closeAll(.tooSlow)
                continue
            }
            let (ready, subscribers, stuck) = state.withLock { state in
                let published = state.order.published
                let ready = state.order.accept(
                    stored.map { ($0.offset, ByteBuffer(string: $0.json)) }, epoch: range.epoch)
                let stuck = state.order.published == published
                if stuck { state.order.stopFilling() }
                return (ready, ready.isEmpty ? [] : state.subscribers.everyone(), stuck)
            }
            var slow = 0
            for subscriber in subscribers where !subscriber.enqueue(contentsOf: ready) { slow += 1 }
            metrics.published(events: ready.count, deliveries: ready.count * subscribers.count, slow: slow)
            if slow > 0 {
                for subscriber in state.withLock({ $0.subscribers.closed }) {
                    unsubscribe(subscriber, reason: subscriber.closeReason ?? .tooSlow)
                }
            }
            if stuck { return }
        }
    }
}

/// The first message on a user socket.
struct FeedConnected: Encodable {
    let type = "connected"
    var userID: String
    var offset: Int
    var epoch: String
    var recovered: Bool
    var timestamp: String

    private enum CodingKeys: String, CodingKey { case type, userID = "user_id", offset, epoch, recovered, timestamp }
}
