import Foundation
import Logging
import NIOCore
import ParleyEvents
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
        /// The hub's `run()`: cancelled, the hub stops (as when its process dies).
        let follower: Task<Void, Never>
    }

    /// A hub on its own store (its own connections, as another process would have), following
    /// the database's notifications, or none (`hearing: false`: only the sweep).
    static func node(_ url: String, hearing: Bool = true) async throws -> Node {
        let store = try await SQLStore.postgres(url: url, logger: Logger(label: "test"))
        var configuration = HubConfiguration(sweepInterval: .milliseconds(200), presenceTimeout: .seconds(2))
        configuration.listensForChanges = hearing
        let hub = Hub(
            store: store, configuration: configuration, node: "node-\(UUID().uuidString.prefix(8))",
            logger: Logger(label: "test"))
        return Node(store: store, hub: hub, follower: Task { try? await hub.run() })
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

    /// The presence messages and `connected` viewers a subscriber reads until `until` holds.
    static func presence(_ subscriber: Subscriber, until: ([String: Any]) -> Bool) async -> [String: Any]? {
        while case .messages(let batch) = await subscriber.next() {
            for buffer in batch {
                guard
                    let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
                        as? [String: Any],
                    object["type"] as? String == "presence"
                else { continue }
                if until(object) { return object }
            }
        }
        return nil
    }

    static func names(_ presence: [String: Any]?) -> [String] {
        ((presence?["data"] as? [String: Any])?["viewers"] as? [[String: Any]])?.compactMap {
            $0["username"] as? String
        }
            ?? []
    }

    @Test func viewersOfEveryHubSeeEachOtherAndADeadHubsViewersGo() async throws {
        let url = try await TestPostgres.freshDatabase()
        let (a, b) = (try await Self.node(url), try await Self.node(url))
        try await a.store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await a.store.createUser(UserRecord(id: "u_2", username: "bob", passwordHash: "h", createdAt: Date()))
        try await a.store.createMeeting(
            MeetingRecord(id: "m_1", title: "t", ownerID: "u_1", createdAt: Date(), epoch: "e_1"))
        let (alice, bob) = (Viewer(userID: "u_1", username: "alice"), Viewer(userID: "u_2", username: "bob"))
        let onA = try await a.hub.acquire(meetingID: "m_1", epoch: "e_1")
        let onB = try await b.hub.acquire(meetingID: "m_1", epoch: "e_1")
        let watching = try await onA.subscribe(viewer: alice, since: nil, epoch: nil)
        // Bob connects through the other hub: Alice is told, and Bob's viewers name her.
        let bobs = try await onB.subscribe(viewer: bob, since: nil, epoch: nil)
        let joined = await Self.presence(watching) {
            ($0["data"] as? [String: Any])?["joined"] != nil && Self.names($0) == ["alice", "bob"]
        }
        #expect(((joined?["data"] as? [String: Any])?["joined"] as? [String: Any])?["username"] as? String == "bob")
        let seenByBob = await Self.presence(bobs) { Self.names($0) == ["alice", "bob"] }
        #expect(seenByBob != nil)
        // Bob leaves: Alice is told.
        onB.unsubscribe(bobs, reason: .clientClosed)
        let left = await Self.presence(watching) { ($0["data"] as? [String: Any])?["left"] != nil }
        #expect(Self.names(left) == ["alice"])
        // Bob again, then his hub dies (no more heartbeats): after the timeout he is gone.
        _ = try await onB.subscribe(viewer: bob, since: nil, epoch: nil)
        _ = await Self.presence(watching) { Self.names($0) == ["alice", "bob"] }
        b.follower.cancel()
        _ = await b.follower.value
        let gone = await Self.presence(watching) { ($0["data"] as? [String: Any])?["left"] != nil }
        #expect(Self.names(gone) == ["alice"])

        onA.closeAll(.shutdown)
        onB.closeAll(.shutdown)
        a.hub.release(meetingID: "m_1")
        b.hub.release(meetingID: "m_1")
        a.follower.cancel()
        _ = await a.follower.value
        try await a.store.close()
        try await b.store.close()
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
