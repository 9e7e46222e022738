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
public final class MeetingChannel: EventSink, SubscriberGroup {
    public let meetingID: String
    let store: any Store
    let configuration: HubConfiguration
    let metrics: HubMetrics
    let loops: DeliveryLoops
    let logger: Logger
    /// This process's name in the shared presence table; nil when the store is not shared.
    let presenceNode: String?
    /// `broadcastEphemeral`'s messages on their way to the store.
    let ephemeralInFlight = Atomic<Int>(0)
    /// The hub's background work: reads and writes that outlive the call that needed them.
    let work: HubWorkQueue
    /// Told of each append through this channel (see ``Hub/onAppend(_:)``).
    let appendWatchers: AppendWatchers

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

    /// Everything the channel keeps, under one lock: each part is a type of its own.
    struct State {
        var order: DeliveryOrder
        var writes = WriteQueue()
        var audience = Audience()
        var subscribers = SubscriberSet()

        /// Marks a read of the store as running when one is needed (see
        /// ``DeliveryOrder/claimFill(writing:)``).
        mutating func claimFill() -> Bool { order.claimFill(writing: writes.writing) }
    }

    let state: Mutex<State>
    /// Held while events are handed to subscribers, so two deliveries never interleave.
    private let delivery = Mutex(())

    init(
        meetingID: String, epoch: String, latestOffset: Int, store: any Store, configuration: HubConfiguration,
        metrics: HubMetrics, loops: DeliveryLoops, logger: Logger, presenceNode: String? = nil, work: HubWorkQueue,
        appendWatchers: AppendWatchers = AppendWatchers()
    ) {
        self.appendWatchers = appendWatchers
        self.meetingID = meetingID
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.loops = loops
        self.logger = logger
        self.presenceNode = presenceNode
        self.work = work
        state = Mutex(State(order: DeliveryOrder(epoch: epoch, latest: latestOffset, keep: configuration.recentEvents)))
    }

    public var epoch: String { state.withLock { $0.order.epoch } }
    public var latestOffset: Int { state.withLock { $0.order.published } }
    public var subscribers: [Subscriber] { state.withLock { $0.subscribers.everyone() } }

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
            state.writes.add(
                Pending(data: data, requirement: Requirement(lease: lease, latest: latest), result: result))
        }
        if leads { await flush() }
        return try await result.value.get()
    }

    /// Appends pending events in batches, one writer at a time per channel. Group commit: a
    /// burst costs one transaction per batch. Events with different requirements go in
    /// different batches; a compare-and-append goes alone.
    func flush() async {
        while true {
            let (batch, epoch, fill) = state.withLock { state in
                let batch = state.writes.nextBatch()
                return (batch, state.order.epoch, batch.isEmpty && state.claimFill())
            }
            if fill { startFilling() }
            if batch.isEmpty { return }
            do {
                let (events, timestamp) = try await append(batch, epoch: epoch)
                accept(events.map { ($0.offset, ByteBuffer(string: $0.json)) }, epoch: epoch)
                let appended = zip(batch, events).map { pending, stored in
                    MeetingEvent(meetingID: meetingID, offset: stored.offset, timestamp: timestamp, data: pending.data)
                }
                appendWatchers.appended(meetingID: meetingID, epoch: epoch, events: appended)
                for (pending, event) in zip(batch, appended) { pending.result.complete(.success(event)) }
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
                let hint = state.withLock { $0.order.known }
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
            let (ready, subscribers, fill) = state.withLock { state in
                let ready = state.order.accept(events, epoch: epoch)
                return (ready, ready.isEmpty ? [] : state.subscribers.everyone(), state.claimFill())
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
        let closed = state.withLock { $0.subscribers.closed }
        for subscriber in closed { unsubscribe(subscriber, reason: subscriber.closeReason ?? .tooSlow) }
    }
}
