import NIOCore
import Synchronization

/// The subscribers of one event loop that have something to send: a wave of deliveries costs
/// one hop to the loop, not one per subscriber, and everything queued by then goes out in it.
final class DeliveryLoop: Sendable {
    let eventLoop: any EventLoop

    private struct Due {
        var subscribers: [Subscriber] = []
        var armed = false
    }

    private let due = Mutex(Due())

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Drains `subscriber` on the loop soon.
    func schedule(_ subscriber: Subscriber) {
        let arm = due.withLock { due in
            due.subscribers.append(subscriber)
            defer { due.armed = true }
            return !due.armed
        }
        if arm { eventLoop.execute { self.run() } }
    }

    private func run() {
        let subscribers = due.withLock { due in
            due.armed = false
            let subscribers = due.subscribers
            due.subscribers.removeAll(keepingCapacity: true)
            return subscribers
        }
        for subscriber in subscribers { subscriber.drain() }
    }
}

/// One `DeliveryLoop` per event loop, made on first use.
final class DeliveryLoops: Sendable {
    private let loops = Mutex<[ObjectIdentifier: DeliveryLoop]>([:])

    func loop(for eventLoop: any EventLoop) -> DeliveryLoop {
        loops.withLock { loops in
            let key = ObjectIdentifier(eventLoop)
            if let loop = loops[key] { return loop }
            let loop = DeliveryLoop(eventLoop: eventLoop)
            loops[key] = loop
            return loop
        }
    }
}
