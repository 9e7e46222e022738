import Foundation
import Testing

@testable import ParleyStore

/// Users' notification feeds on both databases: numbered per user in one transaction, read
/// back by range, only the latest `keptPerUser` kept, a feed made on first use, a renamed
/// meeting's title kept by later updates of the meeting's row.
@Suite struct UserFeedStoreTests {
    typealias Backend = SQLStoreTests.Backend

    @Test(arguments: Backend.allCases) func feedsAreNumberedPerUserAndKeepTheLatest(on backend: Backend) async throws {
        let store = try await SQLStoreTests.store(backend)
        try await SearchStoreTests.meetings(store)
        let positions = try await store.feedPositions(userIDs: ["u_1", "u_2", "u_nobody"])
        #expect(positions["u_1"]?.latest == 0 && positions["u_2"]?.latest == 0 && positions["u_nobody"] == nil)
        #expect(positions["u_1"]?.epoch != positions["u_2"]?.epoch)
        // The same feed is read back, not made again.
        #expect(try await store.feedPositions(userIDs: ["u_1"])["u_1"] == positions["u_1"])

        let when = Date(timeIntervalSince1970: 1_796_000_000)
        let stored = try await store.appendNotifications(
            [
                NotificationDraft(userID: "u_1", type: "meeting_updated", data: #"{"n":1}"#),
                NotificationDraft(userID: "u_2", type: "meeting_shared", data: #"{"n":2}"#),
                NotificationDraft(userID: "u_1", type: "meeting_deleted", data: #"{"n":3}"#),
            ], at: when)
        #expect(stored.map(\.userID) == ["u_1", "u_2", "u_1"] && stored.map(\.offset) == [1, 1, 2])
        #expect(stored[0].epoch == positions["u_1"]?.epoch)
        let first = try #require(
            try JSONSerialization.jsonObject(with: Data(stored[0].json.utf8)) as? [String: Any])
        #expect(first["type"] as? String == "meeting_updated" && first["offset"] as? Int == 1)
        #expect(first["timestamp"] as? String == "2026-11-30T00:53:20.000Z")
        #expect((first["data"] as? [String: Any])?["n"] as? Int == 1)
        #expect(try await store.notifications(userID: "u_1", after: 0, through: 2) == [stored[0], stored[2]])
        #expect(try await store.notifications(userID: "u_1", after: 1, through: 2) == [stored[2]])
        #expect(try await store.feedPositions(userIDs: ["u_1", "u_2"])["u_1"]?.latest == 2)

        // Past what a feed keeps, the oldest go; the numbering goes on.
        let many = (0..<(keptPerUser + 10)).map { NotificationDraft(userID: "u_3", type: "t", data: "{\"i\":\($0)}") }
        let numbered = try await store.appendNotifications(many, at: when)
        #expect(numbered.map(\.offset) == Array(1...(keptPerUser + 10)))
        let kept = try await store.notifications(userID: "u_3", after: 0, through: keptPerUser + 10)
        #expect(kept.count == keptPerUser && kept.first?.offset == 11)

        // A rename survives a later write of the meeting's row read before it.
        let before = try #require(try await store.meeting(id: "m_1"))
        #expect(try await store.retitleMeeting(id: "m_1", title: "Budget review"))
        #expect(try await store.retitleMeeting(id: "m_gone", title: "x") == false)
        var processed = before
        processed.status = .completed
        try await store.updateMeeting(processed)
        let after = try await store.meeting(id: "m_1")
        #expect(after?.title == "Budget review" && after?.status == .completed)
        try await store.close()
    }
}
