import DequeModule
import NIOCore

/// The latest serialized events of a channel, in offset order, for replay without the store.
struct RecentEvents {
    let capacity: Int
    private var events: Deque<(offset: Int, message: ByteBuffer)> = []

    init(capacity: Int) { self.capacity = max(capacity, 0) }

    mutating func append(offset: Int, message: ByteBuffer) {
        guard capacity > 0 else { return }
        if events.count == capacity { events.removeFirst() }
        events.append((offset, message))
    }

    mutating func removeAll() { events.removeAll() }

    /// The messages with `after < offset <= through`, or nil when no longer all of them are
    /// kept.
    func messages(after: Int, through: Int) -> [ByteBuffer]? {
        if through <= after { return [] }
        guard let oldest = events.first?.offset, after + 1 >= oldest else { return nil }
        let wanted = events.filter { $0.offset > after && $0.offset <= through }.map(\.message)
        return wanted.count == through - after ? wanted : nil
    }
}
