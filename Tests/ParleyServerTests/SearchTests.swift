import Foundation
import NIOHTTP1
import ParleyJobs
import ParleyServer
import ParleySynth
import ParleyTestSupport
import Testing

/// `GET /api/search` on a meeting the real pipeline processed, on both databases: what was
/// said is found with its speaker, time and a marked snippet; a correction, a rename and an
/// action item edit are found a moment after they are made; only people who may see the
/// meeting find it; a deleted meeting is found no more.
@Suite struct SearchTests {
    enum Database: String, CaseIterable, Sendable { case sqlite, postgres }

    @Test(arguments: Database.allCases) func whatWasSaidAndEditedIsFoundByWhoMaySeeIt(on database: Database)
        async throws
    {
        let audio = try Data(contentsOf: URL(fileURLWithPath: try ServerFixture.standup().audioPath))
        let url = database == .postgres ? try await TestPostgres.freshDatabase() : nil
        try await ServerFixture.withServer(try ServerFixture.settings { $0.engine.database = url }) { h in
            let (_, alice) = try await h.user("alice")
            let (_, carol) = try await h.user("carol")
            let (meeting, processed, state) = try await h.process("Standup", audio: audio, token: alice)
            #expect(processed.events.last?.stage == "completed")
            let segments = try #require(state["segments"] as? [[String: Any]])
            let segment = try #require(
                segments.first { ($0["text"] as? String ?? "").split(separator: " ").count >= 4 })
            // The longest word the segment holds, as someone would remember it.
            let word = try #require(
                (segment["text"] as? String ?? "").split { !$0.isLetter }.map(String.init).max { $0.count < $1.count })

            let found = try await Self.search(h, "q=\(word)", token: alice) { !$0.isEmpty }
            let hit = try #require(found.first { $0["kind"] as? String == "segment" })
            #expect(hit["meeting_id"] as? String == meeting && hit["title"] as? String == "Standup")
            #expect(hit["speaker"] is String && hit["start"] is Double)
            #expect(
                (hit["snippet"] as? String ?? "").lowercased().contains("<mark>\(word.lowercased())</mark>"), "\(hit)")
            #expect(try await Self.search(h, "q=\(word)", token: carol).isEmpty)
            let page = try await h.request(.GET, "/api/search?q=\(word)&limit=1", token: alice).json
            #expect((page["hits"] as? [Any])?.count == 1)
            #expect(page["next_offset"] as? Int == (found.count > 1 ? 1 : nil))

            // A correction is found a moment after it is made, under the speaker's new name.
            let segmentID = try #require(segment["id"] as? Int)
            let corrected = try await h.request(
                .PATCH, "/api/meetings/\(meeting)/segments/\(segmentID)",
                json: ["text": "The zeppelin budget needs a second look."], token: alice)
            #expect(corrected.status == 200, "\(corrected.text)")
            let speaker = try #require(segment["speaker"] as? String)
            let renamed = try await h.request(
                .PUT, "/api/meetings/\(meeting)/speakers/\(speaker)", json: ["name": "Dana Scully"], token: alice)
            #expect(renamed.status == 200, "\(renamed.text)")
            let zeppelin = try await Self.search(h, "q=zeppelins&speaker=dana%20scully", token: alice) {
                $0.first?["speaker"] as? String == "Dana Scully"
            }
            #expect(zeppelin.count == 1 && zeppelin.first?["item"] as? Int == segmentID, "\(zeppelin)")
            // An action item's new words too.
            let item = try #require((state["action_items"] as? [[String: Any]])?.first?["id"] as? Int)
            let edited = try await h.request(
                .PATCH, "/api/meetings/\(meeting)/action-items/\(item)",
                json: ["task": "Order the blimp hangar"], token: alice)
            #expect(edited.status == 200, "\(edited.text)")
            let blimp = try await Self.search(h, "q=blimp", token: alice) { !$0.isEmpty }
            #expect(blimp.first?["kind"] as? String == "action_item" && blimp.first?["item"] as? Int == item)
            // Someone the meeting is shared with finds it; bad queries are refused.
            #expect(
                try await h.request(
                    .POST, "/api/meetings/\(meeting)/members", json: ["username": "carol"], token: alice
                )
                .status == 201)
            #expect(try await Self.search(h, "q=zeppelin", token: carol).count == 1)
            #expect(try await h.request(.DELETE, "/api/meetings/\(meeting)/members/carol", token: alice).status == 200)
            #expect(try await Self.search(h, "q=zeppelin", token: carol).isEmpty)
            for bad in ["q=%20%2C", "q=x&limit=0", "q=x&from=yesterday"] {
                let refused = try await h.request(.GET, "/api/search?\(bad)", token: alice)
                #expect(
                    refused.status == 400 && refused.errorCode?.hasPrefix("invalid_") == true, "\(bad): \(refused.text)"
                )
            }
            #expect(try await h.request(.GET, "/api/search?q=x").status == 401)
            // Deleted: gone from the results.
            #expect(try await h.request(.DELETE, "/api/meetings/\(meeting)", token: alice).status == 204)
            #expect(try await Self.search(h, "q=zeppelin", token: alice).isEmpty)
        }
    }

    /// `GET /api/action-items`: a member finds the items whose owner has their name, an item
    /// an editor assigns to someone moves to that person's list, one cannot be assigned to
    /// someone the meeting is not shared with, and ticking one done takes it off the open list.
    @Test(arguments: Database.allCases) func myActionItemsAcrossMeetings(on database: Database) async throws {
        let audio = try Data(contentsOf: URL(fileURLWithPath: try ServerFixture.standup().audioPath))
        let url = database == .postgres ? try await TestPostgres.freshDatabase() : nil
        try await ServerFixture.withServer(try ServerFixture.settings { $0.engine.database = url }) { h in
            let (_, alice) = try await h.user("alice")
            let (meeting, processed, state) = try await h.process("Standup", audio: audio, token: alice)
            #expect(processed.events.last?.stage == "completed")
            let items = try #require(state["action_items"] as? [[String: Any]])
            let owned = try #require(items.first { ($0["owner"] as? String)?.isEmpty == false })
            let ownerName = try #require(owned["owner"] as? String)
            // An account called as the owner (any case), shared the meeting with edit rights.
            let username = ownerName.lowercased().replacingOccurrences(of: " ", with: ".")
            let (_, owner) = try await h.user(username)
            let (_, bob) = try await h.user("bob")
            let (_, carol) = try await h.user("carol")
            for (name, edit) in [(username, true), ("bob", false)] {
                #expect(
                    try await h.request(
                        .POST, "/api/meetings/\(meeting)/members", json: ["username": name, "can_edit": edit],
                        token: alice
                    ).status == 201)
            }
            let theirs = Set(items.filter { $0["owner"] as? String == ownerName }.compactMap { $0["id"] as? Int })
            let listed = try await Self.actionItems(h, token: owner) {
                Set($0.compactMap { $0["id"] as? Int }) == theirs
            }
            #expect(Set(listed.compactMap { $0["id"] as? Int }) == theirs, "\(listed)")
            #expect(listed.allSatisfy { $0["meeting_id"] as? String == meeting && $0["title"] as? String == "Standup" })
            #expect(try await Self.actionItems(h, token: carol).isEmpty)

            // Assigned to bob: on his list, off the owner's.
            let item = try #require(owned["id"] as? Int)
            let path = "/api/meetings/\(meeting)/action-items/\(item)"
            let refused = try await h.request(.PATCH, path, json: ["assignee": "carol"], token: alice)
            #expect(refused.status == 422 && refused.errorCode == "invalid_assignee", "\(refused.text)")
            let assigned = try await h.request(.PATCH, path, json: ["assignee": "BOB"], token: alice)
            #expect(assigned.status == 200, "\(assigned.text)")
            let bobs = try await Self.actionItems(h, token: bob) { !$0.isEmpty }
            #expect(bobs.map { $0["id"] as? Int } == [item] && bobs.first?["assignee"] as? String == "bob")
            // Ticked done by the owner of the name: off the open list, on the done one.
            let done = try await h.request(.PATCH, path, json: ["done": true], token: owner)
            #expect(done.status == 200)
            let open = try await Self.actionItems(h, "open=true", token: bob) { $0.isEmpty }
            #expect(open.isEmpty)
            #expect(try await Self.actionItems(h, "open=false", token: bob).map { $0["id"] as? Int } == [item])
            #expect(try await Self.actionItems(h, "assignee=all", token: carol).isEmpty)
            #expect(try await Self.actionItems(h, "assignee=all", token: bob).count == items.count)
            for bad in ["assignee=someone", "open=maybe"] {
                #expect(try await h.request(.GET, "/api/action-items?\(bad)", token: bob).status == 400)
            }
        }
    }

    /// The user's action items (`query` added), asked again (up to 10 s) until `ready` holds.
    static func actionItems(
        _ h: Harness, _ query: String = "", token: String, until ready: ([[String: Any]]) -> Bool = { _ in true }
    ) async throws -> [[String: Any]] {
        try await list(h, "/api/action-items?\(query)", key: "action_items", token: token, until: ready)
    }

    /// The hits for `query`, asked again (up to 10 s) until `ready` holds: the index follows
    /// the log a moment behind.
    static func search(
        _ h: Harness, _ query: String, token: String, until ready: ([[String: Any]]) -> Bool = { _ in true }
    ) async throws -> [[String: Any]] {
        try await list(h, "/api/search?\(query)", key: "hits", token: token, until: ready)
    }

    /// The list under `key` of `GET path`, asked again (up to 10 s) until `ready` holds.
    static func list(
        _ h: Harness, _ path: String, key: String, token: String, until ready: ([[String: Any]]) -> Bool
    ) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let reply = try await h.request(.GET, path, token: token)
            #expect(reply.status == 200, "\(reply.text)")
            let items = reply.json[key] as? [[String: Any]] ?? []
            if ready(items) || ContinuousClock.now > deadline { return items }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
