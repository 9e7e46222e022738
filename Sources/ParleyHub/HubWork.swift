/// What a channel asks its hub to do in the background. Each channel has at most one of each
/// kind outstanding (its state says when one runs), so the queue holds a few items per open
/// channel at most. Items hold their channel weakly: a queue left with items when the hub
/// stops never keeps a channel (and its store) alive.
struct HubWork: Sendable {
    enum Kind: Sendable {
        /// Read from the store what the channel has not delivered.
        case fill
        /// Read the channel's position from the store (after a stale write).
        case resynchronize
        /// Write this process's viewers of the channel to the shared store.
        case sharePresence
        /// Read who watches the channel's meeting through other processes.
        case refreshPresence
        /// Read from the store what a user's feed has not delivered.
        case fillFeed
    }

    let kind: Kind
    weak let channel: MeetingChannel?
    weak let feed: UserFeed?

    init(_ kind: Kind, _ channel: MeetingChannel) {
        self.kind = kind
        self.channel = channel
        feed = nil
    }

    init(fill feed: UserFeed) {
        kind = .fillFeed
        channel = nil
        self.feed = feed
    }
}

/// The hand-over from channels to the hub's task group: channels submit without waiting; the
/// hub's `run()` takes each item and runs it as a child task. The queue is bounded: each channel
/// has at most one item of a kind waiting, so it holds a few per open channel, and past
/// `capacity` an item is refused rather than kept. A refused item, or one submitted once the hub
/// stopped, is reported to the channel, which clears its "running" mark so that the next
/// observation (or the sweep, with a shared store) asks again.
final class HubWorkQueue: Sendable {
    let items: AsyncStream<HubWork>
    private let continuation: AsyncStream<HubWork>.Continuation

    init(capacity: Int = 100_000) {
        (items, continuation) = AsyncStream.makeStream(of: HubWork.self, bufferingPolicy: .bufferingOldest(capacity))
    }

    /// Queues the work; false when it will not run (the queue is full, or the hub stopped).
    func submit(_ work: HubWork) -> Bool {
        if case .enqueued = continuation.yield(work) { return true }
        return false
    }

    /// No more work is taken (the hub's `run()` ended).
    func close() { continuation.finish() }
}
