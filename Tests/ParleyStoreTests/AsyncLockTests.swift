import Testing

@testable import ParleyStore

/// The lock SQLite's one connection is shared through: first come, first served, and a waiter
/// that is cancelled stops waiting without ever taking the lock.
@Suite struct AsyncLockTests {
    @Test func aCancelledWaiterStopsWaitingAndTheLockPassesOn() async throws {
        let lock = AsyncLock()
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        let (release, releasing) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await lock.withLock {
                holding.yield()
                for await _ in release { break }
            }
        }
        for await _ in held { break }
        let waiter = Task { try await lock.withLock { "the waiter ran" } }
        try await Task.sleep(for: .milliseconds(50))  // it waits behind the holder
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        releasing.yield()
        try await holder.value
        // Not left held by the cancelled waiter: the next caller gets it at once.
        #expect(try await lock.withLock { 42 } == 42)
    }

    @Test func waitersGetTheLockInTheOrderTheyAsked() async throws {
        let lock = AsyncLock()
        let order = Order()
        try await lock.withLock {
            for n in 0..<5 {
                Task { try await lock.withLock { await order.append(n) } }
                try await Task.sleep(for: .milliseconds(10))  // each is waiting before the next asks
            }
        }
        while await order.values.count < 5 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(await order.values == [0, 1, 2, 3, 4])
    }

    actor Order {
        var values: [Int] = []
        func append(_ value: Int) { values.append(value) }
    }
}
