import DequeModule
import Foundation
import InMemoryLogging
import Logging
import NIOCore
import NIOPosix
import ParleyEvents
import ParleyStore
import ParleyTestSupport
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import ParleyHub

/// The hub without sockets: numbering, persistence before delivery, replay without gap or
/// duplicate under concurrent publishing, and the bounded queue.
@Suite struct HubTests {
    static func channel(sendQueue: Int = 4096, recent: Int = 16) async throws -> (MeetingChannel, SQLStore) {
        let folder = try TestScratch.folder("hub")
        let store = try await SQLStore.sqlite(path: folder + "/hub.sqlite", logger: Logger(label: "test"))
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await store.createMeeting(
            MeetingRecord(id: "m_1", title: "t", ownerID: "u_1", createdAt: Date(), epoch: "e_1"))
        let hub = Hub(
            store: store, configuration: .init(sendQueue: sendQueue, recentEvents: recent),
            logger: Logger(label: "test"))
        return (try await hub.acquire(meetingID: "m_1", epoch: "e_1"), store)
    }

    static func status(_ n: Int) -> EventData {
        .status(.init(stage: .transcription, state: .progress, detail: "\(n)"))
    }

    static func offsets(_ subscriber: Subscriber) async -> [Int] {
        guard case .messages(let batch) = await subscriber.next() else { return [] }
        return batch.compactMap { buffer in
            let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
            return object?["type"] as? String == "connected" ? nil : object?["offset"] as? Int
        }
    }

    /// The hub's background work runs in `run()`'s task group: shut down gracefully while a
    /// catch-up read keeps failing (its store is gone) and retrying, nothing of it runs once
    /// `run()` returned, and later work is refused instead of left waiting.
    @Test func aHubShutDownGracefullyLeavesNothingRunning() async throws {
        let logs = InMemoryLogHandler()
        let logger = Logger(label: "test", factory: { _ in logs })
        let folder = try TestScratch.folder("hub")
        let store = try await SQLStore.sqlite(path: folder + "/hub.sqlite", logger: logger)
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await store.createMeeting(
            MeetingRecord(id: "m_1", title: "t", ownerID: "u_1", createdAt: Date(), epoch: "e_1"))
        let hub = Hub(store: store, logger: logger)
        let channel = try await hub.acquire(meetingID: "m_1", epoch: "e_1")
        try await store.close()
        func retries() -> Int {
            logs.entries.filter { $0.message.description.hasPrefix("cannot read the event log") }.count
        }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await hub.run() }
                // Another process is said to have appended: the channel reads the log, which fails.
                channel.observe(LogPosition(epoch: "e_1", latest: 5))
                while retries() < 2 { try await Task.sleep(for: .milliseconds(10)) }
                trigger.triggerGracefulShutdown()
                try await group.next()  // run() returned
            }
        }
        let stopped = retries()
        try await Task.sleep(for: .milliseconds(900))  // a retry would come within 400 ms
        #expect(retries() == stopped)
        #expect(channel.state.withLock { $0.order.filling } == false)
        channel.observe(LogPosition(epoch: "e_1", latest: 6))
        #expect(channel.state.withLock { $0.order.filling } == false)  // refused, not queued
        hub.release(meetingID: "m_1")
    }

    /// The hand-over to the hub is bounded: past its capacity, work is refused (and the channel
    /// told), never queued without end; once the hub stopped, everything is refused.
    @Test func theHubsWorkQueueIsBounded() async throws {
        let (channel, store) = try await Self.channel()
        let queue = HubWorkQueue(capacity: 2)
        #expect(queue.submit(HubWork(.fill, channel)))
        #expect(queue.submit(HubWork(.refreshPresence, channel)))
        #expect(!queue.submit(HubWork(.resynchronize, channel)))  // full
        var taker = queue.items.makeAsyncIterator()  // the hub's side
        #expect(await taker.next()?.kind == .fill)
        #expect(await taker.next()?.kind == .refreshPresence)
        #expect(queue.submit(HubWork(.fill, channel)))  // room again
        queue.close()
        #expect(!queue.submit(HubWork(.fill, channel)))  // stopped
        #expect(await taker.next()?.kind == .fill)  // what was queued before is still handed over
        #expect(await taker.next() == nil)
        try await store.close()
    }

    @Test func concurrentPublishersGetConsecutiveOffsetsPersistedInOrder() async throws {
        let (channel, store) = try await Self.channel()
        let viewer = Viewer(userID: "u_1", username: "alice")
        let live = try await channel.subscribe(viewer: viewer, since: nil, epoch: nil)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for n in 0..<50 { _ = try? await channel.publish(Self.status(task * 100 + n)) }
                }
            }
        }
        #expect(try await store.latestOffset(meetingID: "m_1") == 400)
        #expect(try await store.events(meetingID: "m_1", after: 0, through: nil).map(\.offset) == Array(1...400))
        var seen: [Int] = []
        while seen.count < 400 { seen += await Self.offsets(live) }
        #expect(seen == Array(1...400))
        try await store.close()
    }

    @Test func subscribingWhilePublishingNeitherLosesNorRepeats() async throws {
        let (channel, store) = try await Self.channel(recent: 8)  // most replays come from the store
        for n in 1...100 { try await channel.publish(Self.status(n)) }
        let viewer = Viewer(userID: "u_1", username: "alice")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { for n in 101...300 { try await channel.publish(Self.status(n)) } }
            for since in stride(from: 0, through: 100, by: 20) {
                let subscriber = try await channel.subscribe(viewer: viewer, since: since, epoch: "e_1")
                var seen: [Int] = []
                while seen.last != 300 { seen += await Self.offsets(subscriber) }
                #expect(seen == Array((since + 1)...300))
                channel.unsubscribe(subscriber, reason: .clientClosed)
            }
            try await group.waitForAll()
        }
        try await store.close()
    }

    @Test func aFullQueueClosesOnlyThatSubscriber() async throws {
        let (channel, store) = try await Self.channel(sendQueue: 10)
        let viewer = Viewer(userID: "u_1", username: "alice")
        let slow = try await channel.subscribe(viewer: viewer, since: nil, epoch: nil)
        let fast = try await channel.subscribe(viewer: viewer, since: nil, epoch: nil)
        var fastSeen: [Int] = []
        for n in 1...30 {
            try await channel.publish(Self.status(n))
            fastSeen += await Self.offsets(fast)
        }
        #expect(fastSeen == Array(1...30))
        guard case .closed(let reason) = await slow.next() else {
            Issue.record("the slow subscriber was not closed")
            return
        }
        #expect(reason == .tooSlow)
        #expect(channel.subscriberCount == 1)
        try await store.close()
    }

    /// A socket as the hub sees it, on a real event loop: records what is written and closed,
    /// and is writable only when the test says so.
    final class RecordingOutlet: Outlet {
        struct Record {
            var writable = false
            var writes: [[String]] = []
            var pings = 0
            var closes: [CloseReason] = []
        }
        let eventLoop: any EventLoop
        let record = Mutex(Record())

        init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

        var isWritable: Bool { record.withLock { $0.writable } }

        func write(_ messages: Deque<ByteBuffer>, ping: Bool) {
            eventLoop.preconditionInEventLoop()
            record.withLock {
                $0.writes.append(messages.map { String(buffer: $0) })
                if ping { $0.pings += 1 }
            }
        }

        func close(_ reason: CloseReason) {
            eventLoop.preconditionInEventLoop()
            record.withLock { $0.closes.append(reason) }
        }

        /// Becomes writable and resumes delivery on the loop, as a socket's writability event does.
        func open(_ subscriber: Subscriber) async throws {
            record.withLock { $0.writable = true }
            try await eventLoop.submit { subscriber.resume() }.get()
        }

        /// Waits until the loop has run everything queued so far.
        func settle() async throws {
            for _ in 0..<3 { try await eventLoop.submit {}.get() }
        }
    }

    static func types(_ batch: [String]) -> [String] {
        batch.map { text in
            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            return (object?["type"] as? String ?? "?") + ((object?["offset"] as? Int).map { "\($0)" } ?? "")
        }
    }

    @Test func pushedSubscribersGetEverythingQueuedInOneWriteOnceTheSocketTakesIt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (channel, store) = try await Self.channel()
        try await channel.publish(Self.status(1))
        let outlet = RecordingOutlet(eventLoop: group.next())
        let subscriber = try await channel.subscribe(
            viewer: Viewer(userID: "u_1", username: "alice"), since: 0, epoch: nil, outlet: outlet)
        for n in 2...50 { try await channel.publish(Self.status(n)) }
        channel.keepalive(silentAfter: .seconds(60))
        try await outlet.settle()
        // Not writable: nothing written, nothing lost.
        #expect(outlet.record.withLock { $0.writes.isEmpty })
        try await outlet.open(subscriber)
        let writes = outlet.record.withLock { $0.writes }
        #expect(writes.count == 1)
        // `connected` (latest offset 1), the replay, this viewer's own join, the live events, the ping.
        #expect(
            Self.types(writes.first ?? [])
                == ["connected1", "status1", "presence"] + (2...50).map { "status\($0)" } + ["ping"])
        #expect(outlet.record.withLock { $0.pings } == 1)
        // Writable: each further event goes out as it comes, in order.
        for n in 51...60 { try await channel.publish(Self.status(n)) }
        try await outlet.settle()
        let later = outlet.record.withLock { $0.writes.dropFirst().flatMap { $0 } }
        #expect(Self.types(later) == (51...60).map { "status\($0)" })
        channel.unsubscribe(subscriber, reason: .clientClosed)
        try await outlet.settle()
        #expect(outlet.record.withLock { $0.closes } == [.clientClosed])
        try await store.close()
        try await group.shutdownGracefully()
    }

    @Test func aPushedSubscriberThatCannotKeepUpIsClosedOnceWhileItsSocketIsFull() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (channel, store) = try await Self.channel(sendQueue: 10)
        let outlet = RecordingOutlet(eventLoop: group.next())
        let slow = try await channel.subscribe(
            viewer: Viewer(userID: "u_1", username: "alice"), since: nil, epoch: nil, outlet: outlet)
        for n in 1...30 { try await channel.publish(Self.status(n)) }
        try await outlet.settle()
        #expect(outlet.record.withLock { $0.writes.isEmpty && $0.closes == [.tooSlow] })
        #expect(channel.subscriberCount == 0)
        slow.close(.shutdown)
        try await outlet.open(slow)
        #expect(outlet.record.withLock { $0.writes.isEmpty && $0.closes == [.tooSlow] })
        try await store.close()
        try await group.shutdownGracefully()
    }

    @Test func keepaliveClosesWhoeverHasBeenSilentTooLong() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (channel, store) = try await Self.channel()
        let quiet = RecordingOutlet(eventLoop: group.next())
        let talking = RecordingOutlet(eventLoop: group.next())
        let viewer = Viewer(userID: "u_1", username: "alice")
        _ = try await channel.subscribe(viewer: viewer, since: nil, epoch: nil, outlet: quiet)
        let alive = try await channel.subscribe(viewer: viewer, since: nil, epoch: nil, outlet: talking)
        try await Task.sleep(for: .milliseconds(60))
        alive.heard()
        channel.keepalive(silentAfter: .milliseconds(40))
        try await quiet.settle()
        #expect(quiet.record.withLock { $0.closes } == [.unresponsive])
        #expect(talking.record.withLock { $0.closes.isEmpty })
        #expect(CloseReason.unresponsive.code == 1001)
        try await store.close()
        try await group.shutdownGracefully()
    }

    @Test func theRingReplaysOnlyWhatItHolds() {
        var ring = RecentEvents(capacity: 4)
        for n in 1...6 { ring.append(offset: n, message: ByteBuffer(string: "\(n)")) }
        #expect(ring.messages(after: 2, through: 6)?.map { String(buffer: $0) } == ["3", "4", "5", "6"])
        #expect(ring.messages(after: 1, through: 6) == nil)
        #expect(ring.messages(after: 6, through: 6)?.isEmpty == true)
    }
}
