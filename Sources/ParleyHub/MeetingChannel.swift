import Foundation
import Logging
public import NIOCore
public import ParleyPipeline
import ParleyStore
import Synchronization

/// One meeting's live channel: numbers events, persists them (in batches, in order) before
/// anyone sees them, serializes each once and hands the same bytes to every subscriber
/// without waiting for any; replays from memory or the store; tracks who is watching.
public final class MeetingChannel: EventSink {
    public let meetingID: String
    let store: any Store
    let configuration: HubConfiguration
    let metrics: HubMetrics
    let loops: DeliveryLoops
    let logger: Logger

    struct Pending {
        var event: MeetingEvent
        var stored: StoredEvent
        var message: ByteBuffer
    }

    struct State {
        var epoch: String
        /// The next offset to assign.
        var next: Int
        /// Every event up to here is persisted and was handed to the subscribers.
        var published: Int
        var pending: [Pending] = []
        var flushing = false
        var waiters: [(offset: Int, continuation: CheckedContinuation<Void, any Error>)] = []
        var subscribers: [Int: Subscriber] = [:] {
            didSet { snapshot = nil }
        }
        /// `subscribers` as an array, kept between changes: each delivery iterates it.
        var snapshot: [Subscriber]?
        /// Open connections per viewer: presence without scanning every subscriber.
        var viewerCounts: [Viewer: Int] = [:]
        var nextSubscriber = 1
        /// The latest events as sent, for replay without the store.
        var recent: RecentEvents
        var failure: (any Error)?

        mutating func everyone() -> [Subscriber] {
            if let snapshot { return snapshot }
            let all = Array(subscribers.values)
            snapshot = all
            return all
        }
    }

    let state: Mutex<State>

    init(
        meetingID: String, epoch: String, latestOffset: Int, store: any Store, configuration: HubConfiguration,
        metrics: HubMetrics, loops: DeliveryLoops, logger: Logger
    ) {
        self.meetingID = meetingID
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.loops = loops
        self.logger = logger
        state = Mutex(
            State(
                epoch: epoch, next: latestOffset + 1, published: latestOffset,
                recent: RecentEvents(capacity: configuration.recentEvents)))
    }

    public var epoch: String { state.withLock { $0.epoch } }
    public var latestOffset: Int { state.withLock { $0.published } }
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    // MARK: Publishing

    /// Numbers the event, persists it, then delivers it to every subscriber. Returns once it
    /// is persisted and queued for everyone; never waits for a subscriber to send it.
    @discardableResult
    public func publish(_ data: EventData) async throws -> MeetingEvent {
        let (event, leads) = try state.withLock { state -> (MeetingEvent, Bool) in
            if let failure = state.failure { throw failure }
            let event = MeetingEvent(meetingID: meetingID, offset: state.next, timestamp: Date(), data: data)
            let json = try Self.encode(event)
            state.next += 1
            state.pending.append(
                Pending(
                    event: event,
                    stored: StoredEvent(meetingID: meetingID, offset: event.offset, type: event.type, json: json),
                    message: ByteBuffer(string: json)))
            let leads = !state.flushing
            state.flushing = true
            return (event, leads)
        }
        if leads {
            try await flush()
        } else {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let done: Result<Void, any Error>? = state.withLock { state in
                    if state.published >= event.offset { return .success(()) }
                    if let failure = state.failure { return .failure(failure) }
                    state.waiters.append((event.offset, continuation))
                    return nil
                }
                if let done { continuation.resume(with: done) }
            }
        }
        return event
    }

    /// Writes pending events in batches, one publisher at a time, so the log and every
    /// subscriber see offsets in order. Group commit: a burst costs one write per batch.
    private func flush() async throws {
        while true {
            let batch: [Pending] = state.withLock { state in
                let batch = state.pending
                state.pending = []
                if batch.isEmpty { state.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await store.appendEvents(batch.map(\.stored))
            } catch {
                logger.error("event log write failed", metadata: ["meeting.id": "\(meetingID)", "error": "\(error)"])
                let waiters = state.withLock { state in
                    state.failure = error
                    state.flushing = false
                    state.pending = []
                    let waiters = state.waiters
                    state.waiters = []
                    return waiters
                }
                for waiter in waiters { waiter.continuation.resume(throwing: error) }
                throw error
            }
            deliver(batch)
        }
    }

    private func deliver(_ batch: [Pending]) {
        let last = batch[batch.count - 1].event.offset
        let (subscribers, waiters) = state.withLock { state in
            state.published = last
            for item in batch { state.recent.append(offset: item.event.offset, message: item.message) }
            var ready: [CheckedContinuation<Void, any Error>] = []
            state.waiters.removeAll { waiter in
                guard waiter.offset <= last else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return (state.everyone(), ready)
        }
        // Outside the lock: subscribers only append to their own queues.
        let messages = batch.map(\.message)
        var slow = 0
        for subscriber in subscribers where !subscriber.enqueue(contentsOf: messages) {
            slow += 1
        }
        metrics.published(events: batch.count, deliveries: batch.count * subscribers.count, slow: slow)
        for waiter in waiters { waiter.resume() }
        if slow > 0 { removeClosedSubscribers() }
    }

    // MARK: Subscribing

    /// Registers a subscriber and queues, in order: `connected`, then (when `since` is given
    /// and the log is the one the client knew) every event after `since`, then live events.
    /// No gap and no duplicate: live events that arrive while the replay is read queue behind it.
    /// With an `outlet`, messages are pushed to it from its event loop; without, pull them with
    /// `Subscriber.next()`.
    public func subscribe(
        viewer: Viewer, since: Int?, epoch clientEpoch: String?, outlet: (any Outlet)? = nil
    ) async throws -> Subscriber {
        let loop = outlet.map { loops.loop(for: $0.eventLoop) }
        let (subscriber, latest, epoch, recovered, fromMemory, viewers, joined) = state.withLock { state in
            let subscriber = Subscriber(
                id: state.nextSubscriber, viewer: viewer, capacity: configuration.sendQueue, outlet: outlet,
                loop: loop)
            state.nextSubscriber += 1
            let joined = state.viewerCounts[viewer, default: 0] == 0
            state.viewerCounts[viewer, default: 0] += 1
            state.subscribers[subscriber.id] = subscriber
            // Recoverable: the client names an offset of this log (its epoch, if given, is ours).
            let recovered = since.map { $0 <= state.published } == true && (clientEpoch ?? state.epoch) == state.epoch
            let fromMemory = recovered ? state.recent.messages(after: since ?? 0, through: state.published) : nil
            return (
                subscriber, state.published, state.epoch, recovered, fromMemory, Self.viewers(state.viewerCounts),
                joined
            )
        }
        metrics.connected()
        var replay: [ByteBuffer] = []
        if recovered, let since {
            if let fromMemory {
                replay = fromMemory
            } else {
                do {
                    replay = try await store.events(meetingID: meetingID, after: max(since, 0), through: latest)
                        .map { ByteBuffer(string: $0.json) }
                } catch {
                    unsubscribe(subscriber, reason: .shutdown)
                    throw error
                }
            }
        }
        let connected = Connected(
            meetingID: meetingID, offset: latest, epoch: epoch, recovered: recovered, viewers: viewers,
            timestamp: MeetingEvent.formatTimestamp(Date()))
        subscriber.start(with: [Self.message(connected)] + replay)
        if joined { announcePresence(joined: viewer, left: nil) }
        return subscriber
    }

    /// Removes a subscriber (its connection ended) and tells the others if its user left.
    public func unsubscribe(_ subscriber: Subscriber, reason: CloseReason) {
        subscriber.close(reason)
        let (removed, left) = state.withLock { state in
            let removed = state.subscribers.removeValue(forKey: subscriber.id) != nil
            var left = false
            if removed {
                let count = state.viewerCounts[subscriber.viewer, default: 1] - 1
                state.viewerCounts[subscriber.viewer] = count > 0 ? count : nil
                left = count <= 0
            }
            return (removed, left)
        }
        if removed { metrics.disconnected() }
        if left { announcePresence(joined: nil, left: subscriber.viewer) }
    }

    /// Closes every subscriber (shutdown, a reset log, a deleted meeting).
    public func closeAll(_ reason: CloseReason) {
        let subscribers = state.withLock { $0.everyone() }
        for subscriber in subscribers { subscriber.close(reason) }
    }

    /// Starts a new, empty log under a new epoch and closes every subscriber with
    /// `logReset` so clients refetch the state.
    public func reset(epoch: String) async throws {
        try await store.deleteEvents(meetingID: meetingID)
        state.withLock { state in
            state.epoch = epoch
            state.next = 1
            state.published = 0
            state.recent.removeAll()
            state.failure = nil
        }
        closeAll(.logReset)
    }

    /// Queues a message for one subscriber only (a `pong`).
    public func send(_ message: ByteBuffer, to subscriber: Subscriber) {
        subscriber.enqueue(message)
    }

    /// Queues a message for everyone watching; not numbered, not persisted.
    public func broadcastUnnumbered(_ message: ByteBuffer) {
        let subscribers = state.withLock { $0.everyone() }
        for subscriber in subscribers { subscriber.enqueue(message) }
    }

    /// The keepalive round: a `ping` message and a WebSocket ping frame to everyone watching,
    /// and `unresponsive` for whoever has sent nothing (not even a pong) for `silentAfter`.
    public func keepalive(silentAfter: TimeAmount) {
        let subscribers = state.withLock { $0.everyone() }
        let now = NIODeadline.now()
        let ping = Keepalive.ping()
        for subscriber in subscribers {
            if subscriber.isSilent(longerThan: silentAfter, now: now) {
                subscriber.close(.unresponsive)
            } else {
                subscriber.ping(ping)
            }
        }
    }

    private func announcePresence(joined: Viewer?, left: Viewer?) {
        let viewers = state.withLock { Self.viewers($0.viewerCounts) }
        let presence = Presence(
            meetingID: meetingID, timestamp: MeetingEvent.formatTimestamp(Date()),
            data: .init(viewers: viewers, joined: joined, left: left))
        broadcastUnnumbered(Self.message(presence))
        removeClosedSubscribers()
    }

    private func removeClosedSubscribers() {
        let closed = state.withLock { state in state.subscribers.values.filter { $0.closeReason != nil } }
        for subscriber in closed { unsubscribe(subscriber, reason: subscriber.closeReason ?? .tooSlow) }
    }

    private static func viewers(_ counts: [Viewer: Int]) -> [Viewer] {
        counts.keys.sorted { ($0.username, $0.userID) < ($1.username, $1.userID) }
    }

    // MARK: Wire format

    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func message(_ value: some Encodable) -> ByteBuffer {
        // The hub's own messages are plain structs of strings and numbers: encoding cannot fail.
        ByteBuffer(string: (try? encode(value)) ?? "{}")
    }
}

/// The first message on every connection.
struct Connected: Encodable {
    let type = "connected"
    var meetingID: String
    var offset: Int
    var epoch: String
    var recovered: Bool
    var viewers: [Viewer]
    var timestamp: String

    private enum CodingKeys: String, CodingKey {
        case type, meetingID = "meeting_id", offset, epoch, recovered, viewers, timestamp
    }
}

/// Who is watching changed. Not numbered: presence is not part of the meeting's log.
struct Presence: Encodable {
    struct Change: Encodable {
        var viewers: [Viewer]
        var joined: Viewer?
        var left: Viewer?
    }
    let type = "presence"
    var meetingID: String
    var timestamp: String
    var data: Change

    private enum CodingKeys: String, CodingKey { case type, meetingID = "meeting_id", timestamp, data }
}

/// `ping` and `pong`: keepalive messages, not numbered.
public struct Keepalive: Encodable, Sendable {
    public let type: String
    public let timestamp: String

    public static func ping() -> ByteBuffer {
        MeetingChannel.message(Keepalive(type: "ping", timestamp: MeetingEvent.formatTimestamp(Date())))
    }

    public static func pong() -> ByteBuffer {
        MeetingChannel.message(Keepalive(type: "pong", timestamp: MeetingEvent.formatTimestamp(Date())))
    }
}

/// A ring of the latest serialized events.
struct RecentEvents {
    let capacity: Int
    private var messages: [ByteBuffer] = []
    private var offsets: [Int] = []
    private var head = 0

    init(capacity: Int) { self.capacity = max(capacity, 0) }

    mutating func append(offset: Int, message: ByteBuffer) {
        guard capacity > 0 else { return }
        if messages.count < capacity {
            messages.append(message)
            offsets.append(offset)
        } else {
            messages[head] = message
            offsets[head] = offset
            head = (head + 1) % capacity
        }
    }

    mutating func removeAll() {
        messages = []
        offsets = []
        head = 0
    }

    /// The messages with `after < offset <= through`, or nil when the ring no longer holds
    /// all of them.
    func messages(after: Int, through: Int) -> [ByteBuffer]? {
        if through <= after { return [] }
        let count = messages.count
        guard count > 0 else { return nil }
        let oldest = offsets[messages.count < capacity ? 0 : head]
        guard after + 1 >= oldest else { return nil }
        var result: [ByteBuffer] = []
        result.reserveCapacity(through - after)
        for index in 0..<count {
            let slot = (messages.count < capacity ? 0 : head) + index
            let offset = offsets[slot % count]
            if offset > after && offset <= through { result.append(messages[slot % count]) }
        }
        return result.count == through - after ? result : nil
    }
}
