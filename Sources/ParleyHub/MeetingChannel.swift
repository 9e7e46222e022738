import Foundation
import Logging
public import NIOCore
public import ParleyEvents
public import ParleyStore
import Synchronization

/// One meeting's live channel: persists events (in batches, in order, offsets assigned by the
/// store) before anyone sees them, serializes each once and hands the same bytes to every
/// subscriber without waiting for any; delivers what other processes append to the same log
/// (``observe(_:)``), in offset order, reading gaps from the store; replays from memory or the
/// store; tracks who is watching.
public final class MeetingChannel: EventSink {
    public let meetingID: String
    let store: any Store
    let configuration: HubConfiguration
    let metrics: HubMetrics
    let loops: DeliveryLoops
    let logger: Logger
    /// This process's name in the shared presence table; nil when the store is not shared.
    let presenceNode: String?
    /// The hub's background work: reads and writes that outlive the call that needed them.
    let work: HubWorkQueue

    /// An event waiting to be appended, with what its writer requires of the log.
    struct Pending {
        var data: EventData
        var requirement: Requirement
        var result: Completion<Result<MeetingEvent, any Error>>
    }

    /// What a write needs: a job lease held, or the log unchanged since the writer read it.
    struct Requirement: Equatable {
        var lease: String?
        var latest: Int?
    }

    struct State {
        var epoch: String
        /// Every event up to here was handed to the subscribers, in order.
        var published: Int
        /// The latest offset the store is known to have (ours, or another process's).
        var known: Int
        /// Events persisted but not delivered yet because an earlier offset is missing.
        var arrived: [Int: ByteBuffer] = [:]
        var pending: [Pending] = []
        var flushing = false
        var filling = false
        var subscribers: [Int: Subscriber] = [:] {
            didSet { snapshot = nil }
        }
        /// `subscribers` as an array, kept between changes: each delivery iterates it.
        var snapshot: [Subscriber]?
        /// Open connections per viewer: presence without scanning every subscriber.
        var viewerCounts: [Viewer: Int] = [:]
        /// Viewers watching through other processes (a shared database only).
        var remote: Set<Viewer> = []
        /// This process's viewers changed since they were last written to the store.
        var presenceDirty = false
        var presenceWriting = false

        /// Everyone watching, here or through another process, once each, in name order.
        var viewers: [Viewer] {
            Set(viewerCounts.keys).union(remote).sorted { ($0.username, $0.userID) < ($1.username, $1.userID) }
        }
        var nextSubscriber = 1
        /// The latest events as sent, for replay without the store.
        var recent: RecentEvents

        mutating func everyone() -> [Subscriber] {
            if let snapshot { return snapshot }
            let all = Array(subscribers.values)
            snapshot = all
            return all
        }

        /// Moves every event that now follows `published` without a gap out of `arrived`.
        mutating func takeContiguous() -> [ByteBuffer] {
            var ready: [ByteBuffer] = []
            while let message = arrived.removeValue(forKey: published + 1) {
                published += 1
                recent.append(offset: published, message: message)
                ready.append(message)
            }
            return ready
        }

        /// Whether the store holds events this channel has not delivered (and no read runs).
        /// A gap before events already here is read at once. A later offset only announced is
        /// not read while this channel writes: it is most often the notification of its own
        /// append, which comes before the append returns; the writer reads what is still
        /// missing once it has nothing left to write.
        var needsFill: Bool { !filling && (!arrived.isEmpty || (!flushing && known > published)) }
    }

    let state: Mutex<State>
    /// Held while events are handed to subscribers, so two deliveries never interleave.
    private let delivery = Mutex(())

    init(
        meetingID: String, epoch: String, latestOffset: Int, store: any Store, configuration: HubConfiguration,
        metrics: HubMetrics, loops: DeliveryLoops, logger: Logger, presenceNode: String? = nil, work: HubWorkQueue
    ) {
        self.meetingID = meetingID
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.loops = loops
        self.logger = logger
        self.presenceNode = presenceNode
        self.work = work
        state = Mutex(
            State(
                epoch: epoch, published: latestOffset, known: latestOffset,
                recent: RecentEvents(capacity: configuration.recentEvents)))
    }

    public var epoch: String { state.withLock { $0.epoch } }
    public var latestOffset: Int { state.withLock { $0.published } }
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    // MARK: Publishing

    /// Persists the event (the store numbers it), then delivers it to every subscriber. Returns
    /// once it is persisted; never waits for a subscriber to send it.
    @discardableResult
    public func publish(_ data: EventData) async throws -> MeetingEvent {
        try await publish(data, lease: nil, expecting: nil)
    }

    /// Publishes as the holder of the meeting's job lease (`lease`), or only if the log still
    /// ends at `expecting` (an edit computed from the state up to there). Throws
    /// `StoreError.stale` when that no longer holds.
    @discardableResult
    public func publish(_ data: EventData, lease: String?, expecting latest: Int?) async throws -> MeetingEvent {
        let result = Completion<Result<MeetingEvent, any Error>>()
        let leads = state.withLock { state in
            state.pending.append(
                Pending(data: data, requirement: Requirement(lease: lease, latest: latest), result: result))
            let leads = !state.flushing
            state.flushing = true
            return leads
        }
        if leads { await flush() }
        return try await result.value.get()
    }

    /// Appends pending events in batches, one writer at a time per channel. Group commit: a
    /// burst costs one transaction per batch. Events with different requirements go in
    /// different batches; a compare-and-append goes alone.
    private func flush() async {
        while true {
            let (batch, epoch, fill): ([Pending], String, Bool) = state.withLock { state in
                guard let first = state.pending.first else {
                    state.flushing = false
                    let fill = state.needsFill
                    if fill { state.filling = true }
                    return ([], state.epoch, fill)
                }
                var count = 1
                if first.requirement.latest == nil {
                    while count < state.pending.count && state.pending[count].requirement == first.requirement {
                        count += 1
                    }
                }
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return (batch, state.epoch, false)
            }
            if fill { startFilling() }
            if batch.isEmpty { return }
            do {
                let (events, timestamp) = try await append(batch, epoch: epoch)
                accept(events.map { ($0.offset, ByteBuffer(string: $0.json)) }, epoch: epoch)
                for (pending, stored) in zip(batch, events) {
                    pending.result.complete(
                        .success(
                            MeetingEvent(
                                meetingID: meetingID, offset: stored.offset, timestamp: timestamp, data: pending.data)))
                }
            } catch {
                let stale = (error as? StoreError)?.code == .stale
                if !stale {
                    logger.error(
                        "event log write failed",
                        metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
                }
                for pending in batch { pending.result.complete(.failure(error)) }
                if stale { _ = work.submit(HubWork(.resynchronize, self)) }
            }
        }
    }

    /// One transactional append, retried while the store's errors are transient (the
    /// database restarting), for up to `configuration.storeOutage`.
    private func append(_ batch: [Pending], epoch: String) async throws -> ([StoredEvent], Date) {
        let meetingID = meetingID
        let data = batch.map(\.data)
        let requirement = batch[0].requirement
        let condition = AppendCondition(epoch: epoch, latest: requirement.latest, lease: requirement.lease)
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(100)
        while true {
            do {
                let timestamp = Date()
                // Where this channel believes the log ends (right unless another process wrote).
                let hint = state.withLock { $0.known }
                let events = try await store.appendEvents(
                    meetingID: meetingID, count: data.count, condition: condition, hint: hint
                ) { first in
                    try data.enumerated().map { index, data in
                        let event = MeetingEvent(
                            meetingID: meetingID, offset: first + index, timestamp: timestamp, data: data)
                        return StoredEvent(
                            meetingID: meetingID, offset: event.offset, type: event.type, json: try Self.encode(event))
                    }
                }
                return (events, timestamp)
            } catch  where store.isTransient(error) && ContinuousClock.now - started < configuration.storeOutage {
                logger.warning(
                    "event log unavailable; retrying",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Takes persisted events (ours or another process's) and delivers every one that follows
    /// the last delivered without a gap; a gap is read from the store.
    private func accept(_ events: [(offset: Int, message: ByteBuffer)], epoch: String) {
        let fill = delivery.withLock { _ -> Bool in
            let (ready, subscribers, fill) = state.withLock { state -> ([ByteBuffer], [Subscriber], Bool) in
                guard state.epoch == epoch else { return ([], [], false) }  // read before a reset
                for event in events where event.offset > state.published {
                    state.arrived[event.offset] = event.message
                    state.known = max(state.known, event.offset)
                }
                let ready = state.takeContiguous()
                let fill = state.needsFill
                if fill { state.filling = true }
                return (ready, ready.isEmpty ? [] : state.everyone(), fill)
            }
            if !ready.isEmpty { deliver(ready, to: subscribers) }
            return fill
        }
        if fill { startFilling() }
    }

    private func deliver(_ messages: [ByteBuffer], to subscribers: [Subscriber]) {
        var slow = 0
        for subscriber in subscribers where !subscriber.enqueue(contentsOf: messages) {
            slow += 1
        }
        metrics.published(events: messages.count, deliveries: messages.count * subscribers.count, slow: slow)
        if slow > 0 { removeClosedSubscribers() }
    }

    /// Hands the catching up to the hub (the state is marked `filling` already); if the hub
    /// stopped, the mark goes, and the next observation tries again.
    private func startFilling() {
        if !work.submit(HubWork(.fill, self)) { state.withLock { $0.filling = false } }
    }

    /// Reads from the store what this channel has not delivered, until it has caught up with
    /// the latest offset it knows of. One read runs at a time (the hub runs it).
    func fill() async {
        var delay = Duration.milliseconds(100)
        while true {
            let range: (after: Int, through: Int, epoch: String)? = state.withLock { state in
                let through = state.arrived.keys.min().map { $0 - 1 } ?? state.known
                guard through > state.published else {
                    state.filling = false
                    return nil
                }
                return (state.published, through, state.epoch)
            }
            guard let range else { return }
            do {
                let events = try await store.events(meetingID: meetingID, after: range.after, through: range.through)
                let progressed = state.withLock { $0.published }
                accept(events.map { ($0.offset, ByteBuffer(string: $0.json)) }, epoch: range.epoch)
                let stuck = state.withLock { state in
                    // The store had nothing new: stop, the next notification or sweep resumes.
                    if state.published == progressed && events.isEmpty {
                        state.filling = false
                        return true
                    }
                    return false
                }
                if stuck { return }
            } catch {
                logger.warning(
                    "cannot read the event log to catch up; retrying",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
                if (try? await Task.sleep(for: delay)) == nil {
                    state.withLock { $0.filling = false }
                    return
                }
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Another process (or this one) brought the log to `position`: delivers what is missing;
    /// a new epoch means the log was reset, so every subscriber is closed with `logReset`.
    public func observe(_ position: LogPosition) {
        let (reset, fill) = state.withLock { state -> (Bool, Bool) in
            var reset = false
            if position.epoch != state.epoch {
                state.epoch = position.epoch
                state.published = 0
                state.known = 0
                state.arrived = [:]
                state.recent.removeAll()
                reset = true
            }
            state.known = max(state.known, position.latest)
            let fill = state.needsFill
            if fill { state.filling = true }
            return (reset, fill)
        }
        if reset { closeAll(.logReset) }
        if fill { startFilling() }
    }

    /// Reads the meeting's position from the store and observes it (after a stale write).
    func resynchronize() async {
        guard let position = try? await store.logPositions(meetingIDs: [meetingID])[meetingID] else { return }
        observe(position)
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
            let first = state.viewerCounts[viewer, default: 0] == 0
            let joined = first && !state.remote.contains(viewer)
            state.viewerCounts[viewer, default: 0] += 1
            if first { state.presenceDirty = true }
            state.subscribers[subscriber.id] = subscriber
            // Recoverable: the client names an offset of this log (its epoch, if given, is ours).
            let recovered = since.map { $0 <= state.published } == true && (clientEpoch ?? state.epoch) == state.epoch
            let fromMemory = recovered ? state.recent.messages(after: since ?? 0, through: state.published) : nil
            return (
                subscriber, state.published, state.epoch, recovered, fromMemory, state.viewers, joined
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
        sharePresence()
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
                if count <= 0 { state.presenceDirty = true }
                left = count <= 0 && !state.remote.contains(subscriber.viewer)
            }
            return (removed, left)
        }
        if removed { metrics.disconnected() }
        if left { announcePresence(joined: nil, left: subscriber.viewer) }
        if removed { sharePresence() }
    }

    /// Closes every subscriber (shutdown, a reset log, a deleted meeting).
    public func closeAll(_ reason: CloseReason) {
        let subscribers = state.withLock { $0.everyone() }
        for subscriber in subscribers { subscriber.close(reason) }
    }

    /// Starts a new, empty log under a new epoch and closes every subscriber with
    /// `logReset` so clients refetch the state.
    public func reset(epoch: String) async throws {
        try await store.resetLog(meetingID: meetingID, epoch: epoch)
        state.withLock { state in
            state.epoch = epoch
            state.published = 0
            state.known = 0
            state.arrived = [:]
            state.recent.removeAll()
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

    /// Has this process's viewers written to the shared store (one write at a time, always the
    /// latest set), so the other processes' channels of the meeting show them too.
    private func sharePresence() {
        guard presenceNode != nil else { return }
        let start = state.withLock { state -> Bool in
            guard state.presenceDirty, !state.presenceWriting else { return false }
            state.presenceWriting = true
            return true
        }
        guard start else { return }
        if !work.submit(HubWork(.sharePresence, self)) { state.withLock { $0.presenceWriting = false } }
    }

    /// Writes the viewers until the store has the latest set (the hub runs it). A failed write
    /// is left for the hub's next sweep, which retries it; stale rows expire meanwhile.
    func writePresence() async {
        guard let node = presenceNode else { return }
        while !Task.isCancelled {
            let viewers: [PresenceRecord]? = state.withLock { state in
                guard state.presenceDirty else {
                    state.presenceWriting = false
                    return nil
                }
                state.presenceDirty = false
                return state.viewerCounts.keys.map { PresenceRecord(userID: $0.userID, username: $0.username) }
            }
            guard let viewers else { return }
            do {
                try await store.putPresence(meetingID: meetingID, node: node, viewers: viewers, at: Date())
            } catch {
                logger.warning(
                    "cannot share presence",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
                break
            }
        }
        state.withLock { state in
            state.presenceDirty = true
            state.presenceWriting = false
        }
    }

    /// Who watches through the other processes now: announces each viewer who arrived or
    /// went as a whole (not also watching here).
    public func observeRemoteViewers(_ viewers: Set<Viewer>) {
        let (joined, left) = state.withLock { state -> ([Viewer], [Viewer]) in
            let before = Set(state.viewers)
            state.remote = viewers
            let after = Set(state.viewers)
            return (Array(after.subtracting(before)), Array(before.subtracting(after)))
        }
        for viewer in joined { announcePresence(joined: viewer, left: nil) }
        for viewer in left { announcePresence(joined: nil, left: viewer) }
    }

    /// Writes this process's viewers again if an earlier write failed.
    func retrySharingPresence() { sharePresence() }

    private func announcePresence(joined: Viewer?, left: Viewer?) {
        let viewers = state.withLock { $0.viewers }
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
