import Foundation
import HummingbirdWSClient
import NIOCore
import NIOHTTP1
import ParleyJobs
import ParleyPipeline
import ParleyStore
import ParleySynth
import ParleyTestSupport
import Synchronization
import Testing

@testable import ParleyServer

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

    /// Processes `meeting` for the token's user and names each speaker after the person it is
    /// (capitalized), which teaches the user's profiles their voices.
    static func teach(_ h: Harness, _ meeting: MeetingGenerator.Output, token: String) async throws {
        let (id, view) = try await process(h, meeting.audioPath, title: "Standup", token: token)
        for (speaker, person) in truth(view, meeting.reference) {
            let renamed = try await h.request(
                .PUT, "/api/meetings/\(id)/speakers/\(speaker)", json: ["name": person.capitalized], token: token)
            #expect(renamed.status == 200)
        }
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

            // Processed again (a restart), the meeting's renames hold: a renamed speaker is not
            // matched, and the name a person gave (just for this meeting) is nobody else's.
            let idB = try #require(viewB["id"] as? String)
            let people = ["Maria", "Tom", "Priya"]
            let (renamed, _) = try #require(named.sorted { $0.key < $1.key }.first)
            // A name nobody has here if there is one, else another speaker's.
            let other = try #require(
                people.first { !named.values.contains($0) } ?? named.values.first { $0 != named[renamed] })
            let onlyHere = try await h.request(
                .PUT, "/api/meetings/\(idB)/speakers/\(renamed)", json: ["name": other, "remember": false],
                token: alice)
            #expect(onlyHere.status == 200)
            let recordB = try #require(try await h.server.store.meeting(id: idB))
            let again = try await OwnerVoices(
                store: h.server.store, meeting: recordB, states: MeetingStates(store: h.server.store, capacity: 0)
            ).recognize(
                try await h.server.store.meetingVoices(meetingID: idB).map {
                    SpeakerVoice(speaker: $0.speaker, vector: $0.vector, speech: $0.speech)
                }, kind: "classic-pitch-mfcc-20")
            #expect(!again.contains { $0.speaker == renamed || $0.name == other }, "\(again)")
            // The others recognized before still are.
            for (speaker, name) in named where speaker != renamed && name != other && people.contains(name) {
                #expect(again.contains { $0.speaker == speaker && $0.name == name }, "\(again)")
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

    /// A meeting recorded live names a known voice while it is still being recorded (from a
    /// provisional clustering: the final one comes only after the stop), and the names it ends
    /// with are right.
    @Test func aLiveMeetingNamesAKnownVoiceWhileItIsRecorded() async throws {
        let first = try ServerFixture.standup()
        let second = try GeneratedMeetings.standupVoicesAgain()
        let pcm = try IngestTests.pcm16Mono16k(second.audioPath)
        let settings = try ServerFixture.settings { $0.liveIdleTimeout = 900 }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            try await Self.teach(h, first, token: alice)

            let meeting = try await h.meeting("Live planning", token: alice)
            let connected = Signal<Void>()
            let namedLive = Mutex<[String: String]>([:])
            let stopped = Mutex(false)
            async let watched = h.watch(meeting, token: alice, timeout: .seconds(900)) { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            } onMessage: { wire in
                if wire.type == "connected" { connected.complete(()) }
                guard wire.type == "speakers", wire.data["reason"] as? String == "recognized",
                    !stopped.withLock({ $0 })
                else { return }
                for speaker in wire.data["speakers"] as? [[String: Any]] ?? [] where speaker["profile"] != nil {
                    if let id = speaker["id"] as? String, let name = speaker["name"] as? String {
                        namedLive.withLock { $0[id] = name }
                    }
                }
            }
            try await connected.value()
            _ = try await h.ingest(meeting, token: alice) { inbound, outbound in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                for at in stride(from: 0, to: pcm.count, by: 32_000) {
                    try await outbound.write(.binary(ByteBuffer(bytes: pcm[at..<min(pcm.count, at + 32_000)])))
                    _ = try await IngestTests.nextAck(&messages)
                }
                // The recording stays open until a name has come (or long enough to say none will).
                let deadline = ContinuousClock.now + .seconds(600)
                while namedLive.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                }
                stopped.withLock { $0 = true }
                try await outbound.write(.text(#"{"type":"stop"}"#))
                while let message = try await messages.next() {
                    if case .text(let text) = message, Wire(text).type == "stopped" { return text }
                }
                return ""
            }
            let live = namedLive.withLock { $0 }
            #expect(!live.isEmpty, "no voice was recognized while the meeting was being recorded")
            #expect(Set(live.values).isSubset(of: ["Maria", "Tom", "Priya"]), "\(live)")
            #expect(try await watched.events.last?.stage == "completed")

            // The names it ends with are right, one person each.
            let view = try await h.request(.GET, "/api/meetings/\(meeting)", token: alice).json
            let truth = Self.truth(view, second.reference)
            let recognized = (view["speakers"] as? [[String: Any]] ?? []).filter { $0["profile"] != nil }
            #expect(!recognized.isEmpty)
            for speaker in recognized {
                let id = speaker["id"] as? String ?? ""
                #expect(speaker["name"] as? String == truth[id]?.capitalized, "\(id) is \(truth[id] ?? "?")")
            }
            #expect(Set(recognized.compactMap { $0["name"] as? String }).count == recognized.count)
        }
    }

    /// With `server.voice_recognition` set to `suggest`, nobody is named without a person:
    /// the known voices are offered as suggestions; accepting one names the speaker and
    /// strengthens the profile, rejecting one takes it away for good, and a stale answer is refused.
    @Test func suggestionsAreConfirmedOrRejected() async throws {
        let first = try ServerFixture.standup()
        let second = try GeneratedMeetings.standupVoicesAgain()
        let settings = try ServerFixture.settings { $0.engine.voiceRecognition = .suggest }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            try await Self.teach(h, first, token: alice)
            let (b, viewB) = try await Self.process(h, second.audioPath, title: "Planning", token: alice)
            let truth = Self.truth(viewB, second.reference)
            let speakers = viewB["speakers"] as? [[String: Any]] ?? []
            #expect(speakers.allSatisfy { $0["profile"] == nil }, "named without confirmation: \(speakers)")
            let suggested = speakers.filter { $0["suggestion"] != nil }.sorted {
                ($0["id"] as? String ?? "") < ($1["id"] as? String ?? "")
            }
            try #require(suggested.count >= 2, "\(speakers)")
            for speaker in suggested {
                let id = speaker["id"] as? String ?? ""
                let name = (speaker["suggestion"] as? [String: Any])?["name"] as? String
                #expect(name == truth[id]?.capitalized, "\(id) is \(truth[id] ?? "?"), suggested \(name ?? "-")")
            }

            // Yes: the speaker takes the name and the profile has now been heard in two meetings.
            let yes = try #require(suggested.first)
            let yesID = yes["id"] as? String ?? ""
            let yesSuggestion = yes["suggestion"] as? [String: Any] ?? [:]
            let accepted = try await h.request(
                .POST, "/api/meetings/\(b)/speakers/\(yesID)/suggestion",
                json: ["accept": true, "profile": yesSuggestion["profile"] as? String ?? ""], token: alice)
            #expect(accepted.status == 200, "\(accepted.text)")
            let yesNow = (accepted.json["speakers"] as? [[String: Any]])?.first { $0["id"] as? String == yesID }
            #expect(yesNow?["name"] as? String == yesSuggestion["name"] as? String)
            #expect(yesNow?["profile"] as? String == yesSuggestion["profile"] as? String)
            #expect(yesNow?["suggestion"] == nil)
            let profiles = try await h.request(.GET, "/api/voices", token: alice).json["profiles"] as? [[String: Any]]
            let strengthened = profiles?.first { $0["id"] as? String == yesSuggestion["profile"] as? String }
            #expect(strengthened?["meetings"] as? Int == 2, "\(profiles ?? [])")

            // No: the suggestion goes, in the answer and in the meeting as everyone reads it.
            let no = suggested[1]
            let noID = no["id"] as? String ?? ""
            let rejected = try await h.request(
                .POST, "/api/meetings/\(b)/speakers/\(noID)/suggestion", json: ["accept": false], token: alice)
            #expect(rejected.status == 200, "\(rejected.text)")
            let view = try await h.request(.GET, "/api/meetings/\(b)", token: alice).json
            let noNow = (view["speakers"] as? [[String: Any]])?.first { $0["id"] as? String == noID }
            #expect(noNow != nil && noNow?["suggestion"] == nil && noNow?["profile"] == nil, "\(noNow ?? [:])")
            // Answered already: a second answer is a conflict, and so is one for another profile.
            let again = try await h.request(
                .POST, "/api/meetings/\(b)/speakers/\(noID)/suggestion", json: ["accept": true], token: alice)
            #expect(again.status == 409, "\(again.text)")
            if suggested.count > 2, let third = suggested[2]["id"] as? String {
                let wrong = try await h.request(
                    .POST, "/api/meetings/\(b)/speakers/\(third)/suggestion",
                    json: ["accept": true, "profile": yesSuggestion["profile"] as? String ?? ""], token: alice)
                #expect(wrong.status == 409, "\(wrong.text)")
            }
            // The rejection is remembered for that speaker: kept with the meeting's voices.
            let kept = try await h.server.store.meetingVoices(meetingID: b).first { $0.speaker == noID }
            #expect(
                kept?.rejected == [(no["suggestion"] as? [String: Any])?["profile"] as? String ?? ""],
                "\(kept?.rejected ?? [])")
        }
    }

    @Test func theVoiceRecognitionSettingIsReadAndChecked() throws {
        #expect(EngineSettings().voiceRecognition == .name)
        let suggest = try EngineSettings(
            configuration: ParleyConfiguration(values: ["server.voice_recognition": "Suggest"]))
        #expect(suggest.voiceRecognition == .suggest)
        #expect(
            ParleyConfiguration.environmentName(of: "server.voice_recognition") == "PARLEY_SERVER_VOICE_RECOGNITION")
        do {
            _ = try EngineSettings(configuration: ParleyConfiguration(values: ["server.voice_recognition": "always"]))
            Issue.record("an unknown mode was taken")
        } catch {
            #expect(error.message.contains("is not name, suggest or off"), "\(error.message)")
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
