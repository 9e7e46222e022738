/// Events waiting to be appended to one meeting's log, and whether a writer runs. The writer
/// takes them in batches (group commit: a burst costs one transaction per batch): a run of
/// events with the same requirement, or a compare-and-append alone.
struct WriteQueue {
    private var pending: [MeetingChannel.Pending] = []
    /// A writer is appending (the caller that found none became it).
    private(set) var writing = false

    /// Queues an event; true when the caller must write (no writer ran).
    mutating func add(_ event: MeetingChannel.Pending) -> Bool {
        pending.append(event)
        let leads = !writing
        writing = true
        return leads
    }

    /// The next batch to append, in order; empty, and the writer stops, when nothing is left.
    mutating func nextBatch() -> [MeetingChannel.Pending] {
        guard let first = pending.first else {
            writing = false
            return []
        }
        var count = 1
        if first.requirement.latest == nil {
            while count < pending.count && pending[count].requirement == first.requirement {
                count += 1
            }
        }
        let batch = Array(pending.prefix(count))
        pending.removeFirst(count)
        return batch
    }
}
