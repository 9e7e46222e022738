import Foundation
import NIOHTTP1
import ParleyHub
import ParleyJobs
import ParleyServer
import ParleySynth
import ParleyTestSupport
import Testing

/// `/ws/user` on both databases, with real WebSocket clients and the real pipeline: the owner
/// sees their meeting listed and its status and duration change as it is processed; a member
/// sees it shared, an action item assigned to them, its new title and being unshared; the
/// numbering and the `since`/`epoch` replay are the meeting socket's; and on PostgreSQL a
/// share made through one node reaches a socket on another.
@Suite struct UserFeedTests {
    enum Database: String, CaseIterable, Sendable { case sqlite, postgres }

    @Test(arguments: Database.allCases) func aUserHearsOfTheirMeetingsLive(on database: Database) async throws {
        let audio = try Data(contentsOf: URL(fileURLWithPath: try ServerFixture.standup().audioPath))
        let url = database == .postgres ? try await TestPostgres.freshDatabase() : nil
        try await ServerFixture.withServer(try ServerFixture.settings { $0.engine.database = url }) { h in
            let (_, alice) = try await h.user("alice")
            let (_, carol) = try await h.user("carol")
            let aliceReady = Completion<Void>()
            let carolReady = Completion<Void>()
            async let aliceHeard = h.listen(
                "/ws/user", token: alice, timeout: .seconds(600),
                until: { $0.contains { $0.type == "meeting_deleted" } },
                onMessage: { if $0.type == "connected" { aliceReady.complete(()) } })
            async let carolHeard = h.listen(
                "/ws/user", token: carol, timeout: .seconds(600),
                until: { $0.contains { $0.type == "meeting_unshared" } },
                onMessage: { if $0.type == "connected" { carolReady.complete(()) } })
            #expect(await aliceReady.value(within: .seconds(20)) != nil)
            #expect(await carolReady.value(within: .seconds(20)) != nil)

            let (meeting, processed, state) = try await h.process("Standup", audio: audio, token: alice)
            #expect(processed.events.last?.stage == "completed")
            let shared = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "carol"], token: alice)
            #expect(shared.status == 201, "\(shared.text)")
            let item = try #require((state["action_items"] as? [[String: Any]])?.first?["id"] as? Int)
            let assigned = try await h.request(
                .PATCH, "/api/meetings/\(meeting)/action-items/\(item)", json: ["assignee": "carol"], token: alice)
            #expect(assigned.status == 200, "\(assigned.text)")
            let renamed = try await h.request(
                .PATCH, "/api/meetings/\(meeting)", json: ["title": "Standup (Tuesday)"], token: alice)
            #expect(renamed.status == 200 && renamed.json["title"] as? String == "Standup (Tuesday)", "\(renamed.text)")
            #expect(try await h.request(.DELETE, "/api/meetings/\(meeting)/members/carol", token: alice).status == 200)
            #expect(try await h.request(.DELETE, "/api/meetings/\(meeting)", token: alice).status == 204)

            let heard = try await aliceHeard
            let types = heard.events.map(\.type)
            // Numbered from the feed's start, one by one, like a meeting's events.
            let first = try #require(heard.messages.first)
            #expect(first.type == "connected" && first.fields["epoch"] is String && first.fields["user_id"] is String)
            #expect(heard.offsets == Array(1...heard.events.count), "\(heard.offsets)")
            let created = try #require(heard.events.first { $0.type == "meeting_created" })
            #expect((created.data["meeting"] as? [String: Any])?["id"] as? String == meeting)
            let updates = heard.events.filter { $0.type == "meeting_updated" }
            #expect(updates.contains { $0.data["status"] as? String == "processing" }, "\(types)")
            #expect(updates.contains { ($0.data["duration"] as? Double ?? 0) > 30 }, "\(updates)")
            let finished = try #require(updates.last { $0.data["status"] != nil })
            #expect(
                finished.data["status"] as? String == "completed" && finished.data["meeting_id"] as? String == meeting)
            #expect(updates.last?.data["title"] as? String == "Standup (Tuesday)")
            #expect(heard.events.last?.type == "meeting_deleted")
            #expect(!types.contains("meeting_shared") && !types.contains("action_item_assigned"), "\(types)")

            // Status changes queued before the share may reach carol after it (the notifier
            // reads who sees the meeting when it sends); what was done to her comes in order.
            let carols = try await carolHeard
            let toCarol = carols.events.filter { $0.data["status"] == nil }
            #expect(
                toCarol.map(\.type) == [
                    "meeting_shared", "action_item_assigned", "meeting_updated", "meeting_unshared",
                ],
                "\(carols.messages)")
            #expect(carols.offsets == Array(1...carols.events.count))
            try #require(toCarol.count == 4)
            let share = toCarol[0].data
            #expect(
                (share["meeting"] as? [String: Any])?["id"] as? String == meeting && share["by"] as? String == "alice")
            #expect((share["meeting"] as? [String: Any])?["status"] as? String == "completed")
            let assignment = toCarol[1].data
            #expect(assignment["meeting_id"] as? String == meeting && assignment["by"] as? String == "alice")
            #expect((assignment["item"] as? [String: Any])?["assignee"] as? String == "carol")

            // A reconnect with `since` and the epoch gets exactly what followed; another
            // epoch gets nothing and `recovered: false`, so the client reads its list again.
            let epoch = try #require(first.fields["epoch"] as? String)
            let since = 3
            let expected = heard.events.count - since
            let replayed = try await h.listen(
                "/ws/user", token: alice, query: "&since=\(since)&epoch=\(epoch)", timeout: .seconds(30),
                until: { $0.count > expected })
            #expect(replayed.messages.first?.recovered == true)
            #expect(replayed.events.map(\.text) == heard.events.dropFirst(since).map(\.text))
            let elsewhere = try await h.listen(
                "/ws/user", token: alice, query: "&since=\(since)&epoch=e_other", timeout: .seconds(30),
                until: { !$0.isEmpty })
            #expect(elsewhere.messages.first?.recovered == false && elsewhere.events.isEmpty)

            // The user socket answers pings and refuses what is for meetings; bad upgrades are refused.
            let socket = try RawSocket(port: h.port)
            socket.upgrade("/ws/user?token=\(alice)")
            #expect(await socket.readUpgradeHead().status == 101)
            socket.sendText(#"{"type":"ping"}"#)
            socket.sendText(#"{"type":"editing","data":{"segment":1}}"#)
            let answers = await socket.readFrames(3).map { Wire(String(decoding: $0.payload, as: UTF8.self)) }
            #expect(answers.map(\.type) == ["connected", "pong", "error"], "\(answers)")
            #expect((answers.last?.data["code"] as? String) == "unknown_type")
            for (path, status) in [
                ("/ws/user?since=-1&token=\(alice)", 400), ("/ws/user", 401), ("/ws/user?token=nope", 401),
                ("/ws/users?token=\(alice)", 404),
            ] {
                let socket = try RawSocket(port: h.port)
                socket.upgrade(path)
                #expect(await socket.readUpgradeHead().status == status, "\(path)")
            }
        }
    }

    /// Two servers on one PostgreSQL database: what is done through one reaches the user's
    /// socket on the other, numbered in the same feed.
    @Test func aShareThroughOneNodeReachesASocketOnAnother() async throws {
        let url = try await TestPostgres.freshDatabase()
        let node: @Sendable (inout ServerSettings) -> Void = { settings in
            settings.engine.database = url
            settings.jwtSecret = "the cluster's shared secret, long enough to sign with"
        }
        try await ServerFixture.withServer(try ServerFixture.settings(node)) { a in
            try await ServerFixture.withServer(try ServerFixture.settings(node)) { b in
                let (_, alice) = try await a.user("alice")
                let (_, carol) = try await a.user("carol")
                let ready = Completion<Void>()
                async let heard = b.listen(
                    "/ws/user", token: carol, timeout: .seconds(60),
                    until: { $0.contains { $0.type == "meeting_unshared" } },
                    onMessage: { if $0.type == "connected" { ready.complete(()) } })
                #expect(await ready.value(within: .seconds(20)) != nil)
                let meeting = try await a.meeting("Planning", token: alice)
                #expect(
                    try await a.request(
                        .POST, "/api/meetings/\(meeting)/members", json: ["username": "carol"], token: alice
                    ).status == 201)
                #expect(
                    try await a.request(.DELETE, "/api/meetings/\(meeting)/members/carol", token: alice).status == 200)
                let seen = try await heard
                #expect(seen.events.map(\.type) == ["meeting_shared", "meeting_unshared"], "\(seen.messages)")
                #expect(seen.offsets == [1, 2])
            }
        }
    }
}
