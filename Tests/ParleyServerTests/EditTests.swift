import Foundation
import NIOHTTP1
import ParleySynth
import Testing

/// People's edits (speaker names, action items, transcript corrections) as numbered events, who may make them, and the
/// recording played back with byte ranges — on a meeting processed by the real pipeline.
@Suite struct EditTests {
    @Test func editsReachWatchersSurviveReloadsAndReachTheExports() async throws {
        let meetingAudio = try ServerFixture.standup()
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let (_, carol) = try await h.user("carol")
            let audio = try Data(contentsOf: URL(fileURLWithPath: meetingAudio.audioPath))
            let (meeting, done, before) = try await h.process("Standup", audio: audio, token: alice)
            #expect(done.events.last?.stage == "completed")
            let speaker = try #require((before["speakers"] as? [[String: Any]])?.first?["id"] as? String)
            let item = try #require((before["action_items"] as? [[String: Any]])?.first)
            let itemID = try #require(item["id"] as? Int)
            #expect(before["can_edit"] as? Bool == true)

            // Who may edit: not a stranger, not a member who may only watch.
            let rename = ["name": "Dana Scully"]
            #expect(
                try await h.request(.PUT, "/api/meetings/\(meeting)/speakers/\(speaker)", json: rename, token: carol)
                    .status == 403)
            let added = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "bob"], token: alice)
            #expect(added.json["editors"] as? [String] == [])
            #expect(
                try await h.request(.PUT, "/api/meetings/\(meeting)/speakers/\(speaker)", json: rename, token: bob)
                    .status == 403)
            #expect(
                try await h.request(.GET, "/api/meetings/\(meeting)", token: bob).json["can_edit"] as? Bool == false)
            let promoted = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "bob", "can_edit": true], token: alice)
            #expect(promoted.json["editors"] as? [String] == ["bob"])

            // Bad edits are refused with words, and change nothing.
            let empty = try await h.request(
                .PUT, "/api/meetings/\(meeting)/speakers/\(speaker)", json: ["name": "  "], token: bob)
            #expect(empty.status == 400 && empty.errorCode == "invalid_name")
            #expect(
                try await h.request(.PUT, "/api/meetings/\(meeting)/speakers/S99", json: rename, token: bob).status
                    == 404)
            #expect(
                try await h.request(
                    .PATCH, "/api/meetings/\(meeting)/action-items/999", json: ["done": true], token: bob
                )
                .status == 404)
            let long = try await h.request(
                .PATCH, "/api/meetings/\(meeting)/action-items/\(itemID)",
                json: ["task": String(repeating: "x", count: 501)], token: bob)
            #expect(long.status == 400 && long.errorCode == "invalid_task")

            // An editor's rename and action item edit reach a watcher live, as numbered events.
            let latest = try #require(before["offset"] as? Int)
            async let watched = h.watch(meeting, token: alice, query: "&since=\(latest)") { messages in
                messages.contains { $0.type == "action_items" }
            }
            try await Task.sleep(for: .milliseconds(200))
            let renamed = try await h.request(
                .PUT, "/api/meetings/\(meeting)/speakers/\(speaker)", json: rename, token: bob)
            #expect(renamed.status == 200)
            let names = (renamed.json["speakers"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
            #expect(names.contains("Dana Scully") && names.count == 3)
            let edited = try await h.request(
                .PATCH, "/api/meetings/\(meeting)/action-items/\(itemID)",
                json: ["done": true, "owner": "Dana Scully", "due": NSNull()], token: bob)
            #expect(edited.status == 200, "\(edited.text)")
            let seen = try await watched
            #expect(seen.offsets == [latest + 1, latest + 2])
            let renameEvent = try #require(seen.events.first { $0.type == "speakers" })
            #expect(renameEvent.data["reason"] as? String == "rename")
            #expect((renameEvent.data["speakers"] as? [[String: Any]])?.first?["name"] as? String == "Dana Scully")
            let items = try #require(seen.events.first { $0.type == "action_items" }?.data["items"] as? [[String: Any]])
            let changed = try #require(items.first { $0["id"] as? Int == itemID })
            #expect(changed["done"] as? Bool == true && changed["owner"] as? String == "Dana Scully")
            #expect(changed["due"] == nil || changed["due"] is NSNull)
            #expect(changed["task"] as? String == item["task"] as? String)

            // A reload shows the edits, and so do the exports.
            let after = try await h.request(.GET, "/api/meetings/\(meeting)", token: carol)
            #expect(after.status == 403)
            let state = try await h.request(.GET, "/api/meetings/\(meeting)", token: alice).json
            #expect(
                (state["speakers"] as? [[String: Any]])?.first { $0["id"] as? String == speaker }?["name"] as? String
                    == "Dana Scully")
            let markdown = try await h.request(.GET, "/api/meetings/\(meeting)/export?format=md", token: alice).text
            #expect(markdown.contains("Dana Scully"))
            let srt = try await h.request(.GET, "/api/meetings/\(meeting)/export?format=srt", token: alice).text
            #expect(srt.contains("Dana Scully"))

            // A transcript correction: text and speaker, by an editor, live to a watcher, into the
            // exports; refused with words to someone who may only watch, and when it is wrong.
            let segments = try #require(state["segments"] as? [[String: Any]])
            let target = try #require(segments.first)
            let segmentID = try #require(target["id"] as? Int)
            let otherSpeaker = try #require(
                (state["speakers"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
                    .first { $0 != target["speaker"] as? String })
            let path = "/api/meetings/\(meeting)/segments/\(segmentID)"
            let fix = ["text": "Parley corrected this line.", "speaker": otherSpeaker]
            let demoted = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "bob", "can_edit": false], token: alice)
            #expect(demoted.json["editors"] as? [String] == [])
            #expect(try await h.request(.PATCH, path, json: fix, token: bob).status == 403)
            let blank = try await h.request(.PATCH, path, json: ["text": " "], token: alice)
            #expect(blank.status == 400 && blank.errorCode == "invalid_text")
            let nobody = try await h.request(.PATCH, path, json: ["speaker": "S99"], token: alice)
            #expect(nobody.status == 422 && nobody.errorCode == "invalid_speaker")
            let nothing = try await h.request(.PATCH, path, json: [String: String](), token: alice)
            #expect(nothing.status == 400)
            #expect(
                try await h.request(.PATCH, "/api/meetings/\(meeting)/segments/99999", json: fix, token: alice).status
                    == 404)
            let corrections = try #require(state["offset"] as? Int)
            async let correctionSeen = h.watch(meeting, token: bob, query: "&since=\(corrections)") { messages in
                messages.contains { $0.type == "transcript" }
            }
            try await Task.sleep(for: .milliseconds(200))
            let corrected = try await h.request(.PATCH, path, json: fix, token: alice)
            #expect(corrected.status == 200, "\(corrected.text)")
            let answer = try #require(corrected.json["segment"] as? [String: Any])
            #expect(
                answer["text"] as? String == "Parley corrected this line."
                    && answer["speaker"] as? String == otherSpeaker)
            let live = try #require(try await correctionSeen.events.first { $0.type == "transcript" })
            #expect(live.offset == corrections + 1)
            #expect(live.data["id"] as? Int == segmentID && live.data["replaces"] as? [Int] == [segmentID])
            #expect((live.data["corrected"] as? [String: Any])?["by"] as? String == "alice")
            let reloaded = try await h.request(.GET, "/api/meetings/\(meeting)", token: bob).json
            let shown = (reloaded["segments"] as? [[String: Any]])?.first { $0["id"] as? Int == segmentID }
            #expect(shown?["text"] as? String == "Parley corrected this line.")
            #expect((reloaded["segments"] as? [[String: Any]])?.count == segments.count)
            for format in ["md", "srt", "vtt", "json"] {
                let exported = try await h.request(
                    .GET, "/api/meetings/\(meeting)/export?format=\(format)", token: alice)
                #expect(exported.text.contains("Parley corrected this line."), "\(format)")
            }
            // The same correction again changes nothing and publishes nothing.
            #expect(try await h.request(.PATCH, path, json: fix, token: alice).status == 200)
            let unchanged = try await h.request(.GET, "/api/meetings/\(meeting)", token: alice).json
            #expect(unchanged["offset"] as? Int == corrections + 1)

            // Summarized again from the transcript as people left it: a line corrected into a
            // promise becomes an action item; an item ticked done before stays done.
            let promise = try #require(segments.dropFirst(2).first?["id"] as? Int)
            #expect(
                try await h.request(
                    .PATCH, "/api/meetings/\(meeting)/segments/\(promise)",
                    json: ["text": "I will send the budget report to the board by Friday."], token: alice
                ).status == 200)
            #expect(try await h.request(.POST, "/api/meetings/\(meeting)/summary", token: bob).status == 403)
            let fresh = try await h.meeting("Not processed", token: alice)
            let early = try await h.request(.POST, "/api/meetings/\(fresh)/summary", token: alice)
            #expect(early.status == 409 && early.errorCode == "conflict")
            let again = try await h.request(.POST, "/api/meetings/\(meeting)/summary", token: alice)
            #expect(again.status == 200, "\(again.text)")
            let newItems = try #require(again.json["action_items"] as? [[String: Any]])
            #expect(
                newItems.contains { ($0["task"] as? String)?.contains("send the budget report") == true },
                "\(newItems)")
            let kept = newItems.first { $0["task"] as? String == item["task"] as? String }
            #expect(kept?["done"] as? Bool == true && kept?["owner"] as? String == "Dana Scully", "\(newItems)")
            let resummarized = try await h.request(.GET, "/api/meetings/\(meeting)", token: alice).json
            #expect((resummarized["action_items"] as? [[String: Any]])?.count == newItems.count)
            #expect((resummarized["summary"] as? [String: Any])?["summarizer"] as? String == "extractive")

            // The list shows the meeting's length.
            let list = try await h.request(.GET, "/api/meetings", token: alice).json
            let row = (list["meetings"] as? [[String: Any]])?.first { $0["id"] as? String == meeting }
            #expect(((row?["duration"] as? Double) ?? 0) > 30)

            // The recording, whole or in ranges, with the token in the header or (for <audio>) the query.
            let whole = try await h.request(.GET, "/api/meetings/\(meeting)/audio", token: bob)
            #expect(whole.status == 200 && whole.body == audio)
            #expect(whole.headers.contains { $0.0.lowercased() == "content-type" && $0.1 == "audio/wav" })
            let part = try await h.request(
                .GET, "/api/meetings/\(meeting)/audio?token=\(alice)", headers: [("Range", "bytes=100-199")])
            #expect(part.status == 206 && part.body == audio[100..<200])
            #expect(
                part.headers.contains { $0.0.lowercased() == "content-range" && $0.1 == "bytes 100-199/\(audio.count)" }
            )
            let tail = try await h.request(
                .GET, "/api/meetings/\(meeting)/audio", token: alice, headers: [("Range", "bytes=-10")])
            #expect(tail.status == 206 && tail.body == audio.suffix(10))
            let beyond = try await h.request(
                .GET, "/api/meetings/\(meeting)/audio", token: alice, headers: [("Range", "bytes=\(audio.count)-")])
            #expect(beyond.status == 416)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)/audio?token=\(carol)").status == 403)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)/audio?token=nonsense").status == 401)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)/export?format=md&token=\(alice)").status == 401)
        }
    }
}
