import Foundation
import Logging
import NIOCore
import ParleyPipeline
import ParleyStore
import Testing

@testable import ParleyHub

/// The hub without sockets: numbering, persistence before delivery, replay without gap or
/// duplicate under concurrent publishing, and the bounded queue.
@Suite struct HubTests {
    static func channel(sendQueue: Int = 4096, recent: Int = 16) async throws -> (MeetingChannel, SQLStore) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-hub-\(UUID().uuidString)")
        let store = try await SQLStore.sqlite(path: folder.path + "/hub.sqlite", logger: Logger(label: "test"))
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

    @Test func theRingReplaysOnlyWhatItHolds() {
        var ring = RecentEvents(capacity: 4)
        for n in 1...6 { ring.append(offset: n, message: ByteBuffer(string: "\(n)")) }
        #expect(ring.messages(after: 2, through: 6)?.map { String(buffer: $0) } == ["3", "4", "5", "6"])
        #expect(ring.messages(after: 1, through: 6) == nil)
        #expect(ring.messages(after: 6, through: 6)?.isEmpty == true)
    }
}
