import Foundation
import Logging
import NIOCore
import ParleyPipeline
import ParleyStore
import ParleyTestSupport
import Testing

@testable import ParleyHub

/// Hubs of different processes sharing one PostgreSQL log: every subscriber, on whichever hub,
/// gets every event of the meeting in offset order, whoever published it; a hub that hears no
/// notification at all still catches up (the sweep); a reset on one hub closes the others'
/// subscribers.
@Suite struct SharedLogTests {
    struct Node {
        let store: SQLStore
        let hub: Hub
        let follower: Task<Void, Never>
    }

    /// A hub on its own store (its own connections, as another process would have), following
    /// the database's notifications, or none (`hearing: false`: only the sweep).
    static func node(_ url: String, hearing: Bool = true) async throws -> Node {
        let store = try await SQLStore.postgres(url: url, logger: Logger(label: "test"))
        let hub = Hub(
            store: store, configuration: .init(sweepInterval: .milliseconds(200)), logger: Logger(label: "test"))
        let changes = hearing ? store.changes()! : AsyncStream { _ in }
        return Node(store: store, hub: hub, follower: Task { await hub.follow(changes) { _ in } })
    }

    static func offsets(_ subscriber: Subscriber, until last: Int) async -> [Int] {
        var seen: [Int] = []
        while seen.last != last {
            guard case .messages(let batch) = await subscriber.next() else { return seen }
            seen += batch.compactMap { buffer in
                let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
                return object?["type"] as? String == "status" ? object?["offset"] as? Int : nil
            }
        }
        return seen
    }

    @Test func everySubscriberOnEveryHubGetsEveryEventInOrder() async throws {
        let url = try await TestPostgres.freshDatabase()
        let (a, b, deaf) = (
            try await Self.node(url), try await Self.node(url), try await Self.node(url, hearing: false)
        )
        try await a.store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await a.store.createMeeting(
            MeetingRecord(id: "m_1", title: "t", ownerID: "u_1", createdAt: Date(), epoch: "e_1"))
        let viewer = Viewer(userID: "u_1", username: "alice")
        let channels = [
            try await a.hub.acquire(meetingID: "m_1", epoch: "e_1"),
            try await b.hub.acquire(meetingID: "m_1", epoch: "e_1"),
            try await deaf.hub.acquire(meetingID: "m_1", epoch: "e_1"),
        ]
        var subscribers: [Subscriber] = []
        for channel in channels {
            subscribers.append(try await channel.subscribe(viewer: viewer, since: nil, epoch: nil))
        }

        // Two publishers on two hubs, interleaving into one log.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for channel in channels.prefix(2) {
                group.addTask {
                    for n in 0..<150 {
                        try await channel.publish(
                            .status(.init(stage: .transcription, state: .progress, detail: "\(n)")))
                    }
                }
            }
            try await group.waitForAll()
        }
        for subscriber in subscribers {
            #expect(await Self.offsets(subscriber, until: 300) == Array(1...300))
        }
        #expect(try await a.store.events(meetingID: "m_1", after: 0, through: nil).map(\.offset) == Array(1...300))

        // A new upload on hub b resets the log: subscribers on a are closed to refetch.
        try await channels[1].reset(epoch: "e_2")
        for subscriber in subscribers.prefix(2) {
            var reason: CloseReason?
            while reason == nil {
                if case .closed(let why) = await subscriber.next() { reason = why }
            }
            #expect(reason == .logReset)
        }
        #expect(channels[0].epoch == "e_2")

        for (node, channel) in zip([a, b, deaf], channels) {
            channel.closeAll(.shutdown)
            node.hub.release(meetingID: "m_1")
            node.follower.cancel()
            _ = await node.follower.value
            try await node.store.close()
        }
    }
}
