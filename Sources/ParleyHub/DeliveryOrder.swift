import NIOCore

/// The order in which one log's persisted events reach the subscribers: what was delivered, the
/// latest offset the store is known to have, what arrived before an earlier offset did, whether
/// a read of the missing events runs, and the latest messages kept for replay. A value kept
/// under the channel's lock; it does no I/O.
struct DeliveryOrder {
    private(set) var epoch: String
    /// Every event up to here was handed to the subscribers, in order.
    private(set) var published: Int
    /// The latest offset the store is known to have (ours, or another process's).
    private(set) var known: Int
    /// Events persisted but not delivered yet because an earlier offset is missing.
    private var arrived: [Int: ByteBuffer] = [:]
    /// A read of the missing events runs.
    private(set) var filling = false
    /// The latest events as sent, for replay without the store.
    private var recent: RecentEvents

    /// How many delivered messages are kept for replay.
    var keep: Int { recent.capacity }

    init(epoch: String, latest: Int, keep: Int) {
        self.epoch = epoch
        published = latest
        known = latest
        recent = RecentEvents(capacity: keep)
    }

    /// Takes persisted events of the log `epoch` (ours or another process's) and returns, in
    /// order, every one that now follows the last delivered without a gap; they count as
    /// delivered. Events read before a reset (another epoch) are dropped.
    mutating func accept(_ events: [(offset: Int, message: ByteBuffer)], epoch: String) -> [ByteBuffer] {
        guard epoch == self.epoch else { return [] }
        for event in events where event.offset > published {
            arrived[event.offset] = event.message
            known = max(known, event.offset)
        }
        var ready: [ByteBuffer] = []
        while let message = arrived.removeValue(forKey: published + 1) {
            published += 1
            recent.append(offset: published, message: message)
            ready.append(message)
        }
        return ready
    }

    /// The store's log is `epoch` and reaches `latest`. Returns true when the epoch is new: the
    /// log was reset and this order starts over from it.
    mutating func observe(epoch: String, latest: Int) -> Bool {
        var reset = false
        if epoch != self.epoch {
            restart(epoch: epoch)
            reset = true
        }
        known = max(known, latest)
        return reset
    }

    /// Starts over with a new, empty log.
    mutating func restart(epoch: String) {
        self.epoch = epoch
        published = 0
        known = 0
        arrived = [:]
        recent.removeAll()
    }

    /// Marks a read of the store as running when one is needed, and says whether it is. A gap
    /// before events already here is read at once. A later offset only announced is not read
    /// while the channel writes (`writing`): it is most often the notification of its own
    /// append, which comes before the append returns; the writer asks again once it has
    /// nothing left to write.
    mutating func claimFill(writing: Bool) -> Bool {
        guard !filling, !arrived.isEmpty || (!writing && known > published) else { return false }
        filling = true
        return true
    }

    /// The range the running read fetches next: after the last delivered event, through the
    /// offset before the first that arrived out of order (or the latest known). Nil, and the
    /// read ends, when nothing is missing.
    mutating func nextRead() -> (after: Int, through: Int, epoch: String)? {
        let through = arrived.keys.min().map { $0 - 1 } ?? known
        guard through > published else {
            filling = false
            return nil
        }
        return (published, through, epoch)
    }

    /// The running read ends without having caught up (the store had nothing new, or the hub
    /// stopped); the next notification or sweep starts another.
    mutating func stopFilling() { filling = false }

    /// Whether a client that knew the log up to `since` (of its `epoch`, if it says) can be
    /// given what followed: the offset is one of this log's.
    func recovers(since: Int?, epoch clientEpoch: String?) -> Bool {
        guard let since else { return false }
        return since <= published && (clientEpoch ?? epoch) == epoch
    }

    /// The delivered messages after `since`, from memory; nil when not all are kept.
    func kept(after since: Int) -> [ByteBuffer]? {
        recent.messages(after: since, through: published)
    }
}
