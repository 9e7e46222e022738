import Foundation
import NIOHTTP1
import ParleySynth
import ParleyTestSupport
import Testing

/// Voice profiles through the API, on meetings processed by the real pipeline: a rename teaches
/// the owner's profiles a voice, and a later meeting of the same owner in which the same voices
/// speak names them when it completes, without anyone confirming.
@Suite struct VoiceTests {
    /// Processes a recording as a new meeting of the token's user and returns the meeting's view.
    static func process(_ h: Harness, _ audio: String, title: String, token: String) async throws
        -> (id: String, view: [String: Any])
    {
        let meeting = try await h.meeting(title, token: token)
        async let processed = h.watch(meeting, token: token) { messages in
            messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
        }
        try await Task.sleep(for: .milliseconds(200))
        let upload = try await h.request(
            .PUT, "/api/meetings/\(meeting)/audio", token: token,
            body: try Data(contentsOf: URL(fileURLWithPath: audio)), contentType: "audio/wav")
        #expect(upload.status == 202)
        #expect(try await processed.events.last?.stage == "completed")
        return (meeting, try await h.request(.GET, "/api/meetings/\(meeting)", token: token).json)
    }

    /// Each speaker label of a processed meeting, as the reference speaker it mostly is.
    static func truth(_ view: [String: Any], _ reference: MeetingReference) -> [String: String] {
        var overlap: [String: [String: Double]] = [:]
        for turn in view["turns"] as? [[String: Any]] ?? [] {
            guard let speaker = turn["speaker"] as? String, let start = turn["start"] as? Double,
                let end = turn["end"] as? Double
            else { continue }
            for ref in reference.turns {
                let o = min(end, ref.end) - max(start, ref.start)
                if o > 0 { overlap[speaker, default: [:]][ref.speaker, default: 0] += o }
            }
        }
        return overlap.compactMapValues { $0.max { $0.value < $1.value }?.key }
    }

    static func names(_ view: [String: Any]) -> [String: String] {
        var names: [String: String] = [:]
        for speaker in view["speakers"] as? [[String: Any]] ?? [] {
            if let id = speaker["id"] as? String, let name = speaker["name"] as? String { names[id] = name }
        }
        return names
    }

    @Test func aRenamedVoiceIsNamedInTheOwnersNextMeeting() async throws {
        let first = try ServerFixture.standup()
        let second = try GeneratedMeetings.standupVoicesAgain()
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let (a, viewA) = try await Self.process(h, first.audioPath, title: "Standup", token: alice)
            let truthA = Self.truth(viewA, first.reference)
            #expect(Set(truthA.values) == ["maria", "tom", "priya"], "\(truthA)")
            // "Just this meeting": a name without a profile.
            let (speaker, _) = try #require(truthA.sorted { $0.key < $1.key }.first)
            let once = try await h.request(
                .PUT, "/api/meetings/\(a)/speakers/\(speaker)", json: ["name": "Temp", "remember": false],
                token: alice)
            #expect(once.status == 200)
            #expect((try await h.request(.GET, "/api/voices", token: alice).json["profiles"] as? [Any])?.count == 0)
            for (speaker, person) in truthA {
                let renamed = try await h.request(
                    .PUT, "/api/meetings/\(a)/speakers/\(speaker)", json: ["name": person.capitalized], token: alice)
                #expect(renamed.status == 200)
                let info = (renamed.json["speakers"] as? [[String: Any]])?.first { $0["id"] as? String == speaker }
                #expect(info?["profile"] as? String != nil)
            }
            let profiles = try await h.request(.GET, "/api/voices", token: alice).json["profiles"] as? [[String: Any]]
            #expect(Set(profiles?.compactMap { $0["name"] as? String } ?? []) == ["Maria", "Tom", "Priya"])
            #expect(profiles?.allSatisfy { $0["meetings"] as? Int == 1 } == true)
            #expect(profiles?.allSatisfy { $0["vector"] == nil } == true)

            // The same voices, another script: named when the meeting completes.
            let (_, viewB) = try await Self.process(h, second.audioPath, title: "Planning", token: alice)
            let truthB = Self.truth(viewB, second.reference)
            let named = Self.names(viewB)
            var right = 0
            let recognized = (viewB["speakers"] as? [[String: Any]] ?? []).filter { $0["profile"] != nil }
            for (speaker, name) in named where recognized.contains(where: { $0["id"] as? String == speaker }) {
                #expect(name == truthB[speaker]?.capitalized, "\(speaker) named \(name), is \(truthB[speaker] ?? "?")")
                if name == truthB[speaker]?.capitalized { right += 1 }
            }
            #expect(right >= 2, "named: \(named), truth: \(truthB)")
            // No two speakers share a name; a recognized one says how sure it was.
            #expect(Set(named.values).count == named.count)
            for speaker in viewB["speakers"] as? [[String: Any]] ?? [] where speaker["profile"] != nil {
                #expect((speaker["confidence"] as? Double ?? 0) > 0.5)
            }

            // Profiles are the owner's: bob's meeting with the same voices names nobody.
            let (_, viewBob) = try await Self.process(h, second.audioPath, title: "Bob's", token: bob)
            // (Names the transcript gives may still appear; none comes from a voice.)
            let bobSpeakers = viewBob["speakers"] as? [[String: Any]] ?? []
            #expect(!bobSpeakers.isEmpty && bobSpeakers.allSatisfy { $0["profile"] == nil && $0["suggestion"] == nil })
            #expect((try await h.request(.GET, "/api/voices", token: bob).json["profiles"] as? [Any])?.count == 0)

            // Rename, merge and delete; a stranger's profile is not found.
            let ids = (profiles ?? []).compactMap { $0["id"] as? String }
            #expect(try await h.request(.DELETE, "/api/voices/\(ids[0])", token: bob).status == 404)
            let clash = try await h.request(
                .PATCH, "/api/voices/\(ids[0])", json: ["name": (profiles?[1]["name"] as? String ?? "")], token: alice)
            #expect(clash.status == 409 && clash.errorCode == "name_taken")
            let merged = try await h.request(.POST, "/api/voices/\(ids[0])/merge", json: ["from": ids[1]], token: alice)
            #expect(merged.status == 200 && merged.json["meetings"] as? Int ?? 0 >= 1)
            #expect(try await h.request(.DELETE, "/api/voices/\(ids[0])", token: alice).status == 204)
            let left = try await h.request(.GET, "/api/voices", token: alice).json["profiles"] as? [[String: Any]]
            #expect(left?.count == 1)
        }
    }

    @Test func aVoiceEnrolledFromARecordingIsNamedAndBadRecordingsAreRefused() async throws {
        let alone = try GeneratedMeetings.standupVoiceAlone("tom")
        let meeting = try GeneratedMeetings.standupVoicesAgain()
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let audio = try Data(contentsOf: URL(fileURLWithPath: alone.audioPath))
            // Refused, with words: no name, not audio, not a recording at all.
            let nameless = try await h.request(
                .POST, "/api/voices", token: alice, body: audio, contentType: "audio/wav")
            #expect(nameless.status == 400 && nameless.errorCode == "invalid_name")
            let text = try await h.request(
                .POST, "/api/voices?name=Tom", token: alice, body: audio, contentType: "text/plain")
            #expect(text.status == 415)
            let garbage = try await h.request(
                .POST, "/api/voices?name=Tom", token: alice, body: Data(repeating: 7, count: 5000),
                contentType: "audio/wav")
            #expect(garbage.status == 422 && garbage.errorCode == "unreadable_audio")
            #expect(try await h.request(.GET, "/api/voices", token: alice).json["profiles"] as? [Any] != nil)

            let enrolled = try await h.request(
                .POST, "/api/voices?name=Tom", token: alice, body: audio, contentType: "audio/wav")
            #expect(enrolled.status == 201, "\(enrolled.text)")
            #expect(enrolled.json["name"] as? String == "Tom" && enrolled.json["meetings"] as? Int == 0)
            #expect((enrolled.json["prints"] as? [String: Int])?.isEmpty == false)

            // Tom speaks in a meeting: named from the enrollment alone, and nobody else is Tom.
            let (_, view) = try await Self.process(h, meeting.audioPath, title: "Planning", token: alice)
            let truth = Self.truth(view, meeting.reference)
            let recognized = (view["speakers"] as? [[String: Any]] ?? []).filter { $0["profile"] != nil }
            #expect(recognized.count == 1, "\(view["speakers"] ?? [])")
            for speaker in recognized {
                #expect(speaker["name"] as? String == "Tom")
                #expect(truth[speaker["id"] as? String ?? ""] == "tom")
            }
        }
    }
}
