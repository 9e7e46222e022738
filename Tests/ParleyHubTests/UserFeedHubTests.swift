import Foundation
import Logging
import NIOCore
import ParleyStore
import ParleyTestSupport
import Testing

@testable import ParleyHub

/// A user's feed in the hub without sockets: notifications reach every one of the user's
/// subscribers in order, a late subscriber replays from `since`, and a feed that fell behind
/// by more than the store keeps closes its subscribers (they start over) and goes on.
@Suite struct UserFeedHubTests {
    static func texts(_ subscriber: Subscriber, count: Int) async -> [[String: Any]] {
        var all: [[String: Any]] = []
        while all.count < count, case .messages(let batch) = await subscriber.next() {
            all += batch.compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.readableBytesView)) as? [String: Any]
            }
        }
        return all
    }

    @Test func notificationsReachEachSocketOfTheUserInOrder() async throws {
        let folder = try TestScratch.folder("feed")
        let store = try await SQLStore.sqlite(path: folder + "/hub.sqlite", logger: Logger(label: "test"))
        for (id, name) in [("u_1", "alice"), ("u_2", "bob")] {
            try await store.createUser(UserRecord(id: id, username: name, passwordHash: "h", createdAt: Date()))
        }
        let hub = Hub(store: store, logger: Logger(label: "test"))
        let running = Task { try await hub.run() }
        let alice = Viewer(userID: "u_1", username: "alice")
        let feed = try await hub.acquireFeed(userID: "u_1")
        let first = try await feed.subscribe(viewer: alice, session: nil, since: nil, epoch: nil)
        let second = try await feed.subscribe(viewer: alice, session: nil, since: nil, epoch: nil)

        let drafts = (1...5).flatMap { n in
            [
                NotificationDraft(userID: "u_1", type: "meeting_updated", data: "{\"n\":\(n)}"),
                NotificationDraft(userID: "u_2", type: "meeting_updated", data: "{\"n\":\(n)}"),
            ]
        }
        try await hub.notify(drafts)
        for subscriber in [first, second] {
            let messages = await Self.texts(subscriber, count: 6)
            #expect(messages.first?["type"] as? String == "connected" && messages.first?["offset"] as? Int == 0)
            #expect(messages.dropFirst().compactMap { $0["offset"] as? Int } == [1, 2, 3, 4, 5])
            #expect(
                messages.dropFirst().compactMap { ($0["data"] as? [String: Any])?["n"] as? Int } == [1, 2, 3, 4, 5])
        }
        // A late subscriber with `since` gets the rest, then live ones.
        let late = try await feed.subscribe(viewer: alice, session: nil, since: 3, epoch: feed.epoch)
        try await hub.notify([NotificationDraft(userID: "u_1", type: "meeting_deleted", data: "{}")])
        let replayed = await Self.texts(late, count: 4)
        #expect(replayed.first?["recovered"] as? Bool == true)
        #expect(replayed.dropFirst().compactMap { $0["offset"] as? Int } == [4, 5, 6])

        // More than the store keeps arrives before the feed reads it: the sockets start over
        // (closed as too slow: they reconnect with `since` and are told `recovered: false`).
        let flood = (0..<(keptPerUser + 20)).map { _ in NotificationDraft(userID: "u_1", type: "t", data: "{}") }
        _ = try await store.appendNotifications(flood, at: Date())
        let latest = 6 + keptPerUser + 20
        feed.observe(LogPosition(epoch: feed.epoch, latest: latest))
        while case .messages = await first.next() {}
        #expect(first.closeReason == .tooSlow)
        let again = try await feed.subscribe(viewer: alice, session: nil, since: 6, epoch: feed.epoch)
        let restarted = await Self.texts(again, count: 1)
        #expect(restarted.first?["recovered"] as? Bool == false && restarted.first?["offset"] as? Int == latest)
        try await hub.notify([NotificationDraft(userID: "u_1", type: "after", data: "{}")])
        let next = await Self.texts(again, count: 1)
        #expect(next.first?["offset"] as? Int == latest + 1 && next.first?["type"] as? String == "after")

        hub.releaseFeed(userID: "u_1")
        running.cancel()
        _ = try? await running.value
        try await store.close()
    }
}
