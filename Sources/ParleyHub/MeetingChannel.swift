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
    func flush() async {
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
    func append(_ batch: [Pending], epoch: String) async throws -> ([StoredEvent], Date) {
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
    func accept(_ events: [(offset: Int, message: ByteBuffer)], epoch: String) {
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

    func deliver(_ messages: [ByteBuffer], to subscribers: [Subscriber]) {
        var slow = 0
        for subscriber in subscribers where !subscriber.enqueue(contentsOf: messages) {
            slow += 1
        }
        metrics.published(events: messages.count, deliveries: messages.count * subscribers.count, slow: slow)
        if slow > 0 { removeClosedSubscribers() }
    }

    func removeClosedSubscribers() {
        let closed = state.withLock { state in state.subscribers.values.filter { $0.closeReason != nil } }
        for subscriber in closed { unsubscribe(subscriber, reason: subscriber.closeReason ?? .tooSlow) }
    }
}
