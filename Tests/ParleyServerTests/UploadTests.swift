import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ParleyJobs
import ParleySynth
import ParleyTestSupport
import Testing

@testable import ParleyServer

/// Uploads into the real pipeline (whisper + extractive), watched over a real WebSocket.
@Suite struct UploadTests {
    /// The seed's test script: register, log in, create a meeting, connect, upload, and receive
    /// status, transcript, summary and completion, live, while the upload runs.
    @Test func theFullFlowFromRegisterToCompletedMeeting() async throws {
        let meetingAudio = try ServerFixture.standup()
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Standup", token: token)
            let uploading = Signal<Void>()
            async let watched = h.watch(meeting, token: token) { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            } onMessage: { wire in
                if wire.type == "connected" { uploading.complete(()) }
            }
            try await uploading.value()
            let audio = try Data(contentsOf: URL(fileURLWithPath: meetingAudio.audioPath))
            let upload = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            #expect(upload.status == 202, "\(upload.text)")
            #expect(upload.json["bytes"] as? Int == audio.count)
            let seen = try await watched
            let types = Set(seen.events.map(\.type))
            #expect(
                types.isSuperset(of: ["status", "upload_progress", "transcript", "speakers", "summary", "action_items"])
            )
            #expect(seen.offsets == Array(1...(seen.offsets.last ?? 0)))
            #expect(seen.events.last?.stage == "completed")
            // A transcript segment arrived before the upload stage completed? Not with a fast local
            // upload; but the stages come in the protocol's order.
            let stages = seen.events.filter { $0.type == "status" && $0.state == "started" }.compactMap(\.stage)
            #expect(stages == ["upload", "diarization", "transcription", "alignment", "summarization"])

            let state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            #expect(state.json["status"] as? String == "completed")
            #expect(state.json["offset"] as? Int == seen.offsets.last)
            #expect(((state.json["segments"] as? [Any])?.count ?? 0) >= 5)
            #expect(((state.json["action_items"] as? [Any])?.count ?? 0) == 3)
            #expect((state.json["speakers"] as? [Any])?.count == 3)

            let srt = try await h.request(.GET, "/api/meetings/\(meeting)/export?format=srt", token: token)
            #expect(srt.status == 200)
            #expect(srt.text.contains("-->"))
            let markdown = try await h.request(.GET, "/api/meetings/\(meeting)/export?format=md", token: token)
            #expect(markdown.text.contains("Action items"))
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)/export?format=doc", token: token).status == 400)

            // Re-uploading a finished meeting starts a new log under a new epoch.
            let again = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            #expect(again.status == 202)
            #expect(again.json["epoch"] as? String != state.json["epoch"] as? String)
            let busy = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            #expect(busy.status == 409)
            // Deleting it cancels the processing and removes it.
            #expect(try await h.request(.DELETE, "/api/meetings/\(meeting)", token: token).status == 204)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)", token: token).status == 404)
        }
    }

    /// A meeting asks for its diarization when it is created (a backend, speaker count hints):
    /// kept with the meeting, shown back, used when it is processed; nonsense is a 400.
    @Test func aMeetingAsksForItsDiarizerAndSpeakerCount() async throws {
        let meetingAudio = try ServerFixture.standup()
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            for (body, status, code) in [
                (["title": "x", "diarizer": "pyannote-gpu"] as [String: any Sendable], 400, "invalid_diarizer"),
                (["title": "x", "speakers": 0], 400, "invalid_speakers"),
                (["title": "x", "min_speakers": 5, "max_speakers": 2], 422, "invalid_speakers"),
                (["title": "x", "speakers": 7, "max_speakers": 4], 422, "invalid_speakers"),
            ] {
                let refused = try await h.request(.POST, "/api/meetings", json: body, token: token)
                #expect(refused.status == status, "\(body): \(refused.text)")
                #expect((refused.json["error"] as? [String: Any])?["code"] as? String == code, "\(refused.text)")
            }
            let created = try await h.request(
                .POST, "/api/meetings", json: ["title": "Two of three", "diarizer": "classic", "speakers": 2],
                token: token)
            #expect(created.status == 201, "\(created.text)")
            let asked = created.json["diarization"] as? [String: Any]
            #expect(asked?["diarizer"] as? String == "classic" && asked?["speakers"] as? Int == 2, "\(created.text)")
            let meeting = try #require(created.json["id"] as? String)
            let audio = try Data(contentsOf: URL(fileURLWithPath: meetingAudio.audioPath))
            let upload = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            #expect(upload.status == 202, "\(upload.text)")
            var state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            let deadline = ContinuousClock.now + .seconds(180)
            while state.json["status"] as? String == "processing" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
                state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            }
            #expect(state.json["status"] as? String == "completed", "\(state.text.prefix(500))")
            // Three voices, but two were asked for.
            #expect((state.json["speakers"] as? [Any])?.count == 2)
            #expect((state.json["diarization"] as? [String: Any])?["speakers"] as? Int == 2)
            let listed = try await h.request(.GET, "/api/meetings", token: token)
            let row = (listed.json["meetings"] as? [[String: Any]])?.first { $0["id"] as? String == meeting }
            #expect((row?["diarization"] as? [String: Any])?["diarizer"] as? String == "classic")
        }
    }

    @Test func corruptAudioFailsTheMeetingAndTheServerKeepsServing() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Garbage", token: token)
            let garbage = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })
            let upload = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: garbage, contentType: "audio/wav")
            #expect([202, 422].contains(upload.status), "\(upload.text)")
            let seen = try await h.watch(meeting, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && $0.stage == "failed" }
            }
            let error = try #require(seen.events.first { $0.type == "error" })
            #expect(error.data["stage"] as? String == "upload")
            #expect(!(error.data["message"] as? String ?? "").isEmpty)
            var state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            for _ in 0..<50 where state.json["status"] as? String != "failed" {
                try await Task.sleep(for: .milliseconds(100))
                state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            }
            #expect(state.json["status"] as? String == "failed")
            #expect(try await h.request(.GET, "/health").status == 200)
        }
    }

    @Test func uploadsOverTheLimitAreRefused() async throws {
        let settings = try ServerFixture.settings { $0.maxUploadBytes = 100_000 }
        let meetingAudio = try ServerFixture.standup()
        try await ServerFixture.withServer(settings) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Big", token: token)
            let audio = try Data(contentsOf: URL(fileURLWithPath: meetingAudio.audioPath))
            // Declared length over the limit: refused before a byte is read; the meeting is untouched.
            let declared = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            #expect(declared.status == 413)
            #expect(declared.errorCode == "too_large")
            let untouched = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            #expect(untouched.json["status"] as? String == "created")

            // Streamed without a length (chunked): stopped at the limit, the meeting fails.
            var request = HTTPClientRequest(url: h.base + "/api/meetings/\(meeting)/audio")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "audio/wav")
            let (chunks, feed) = AsyncStream<ByteBuffer>.makeStream()
            for start in stride(from: 0, to: audio.count, by: 16_384) {
                feed.yield(ByteBuffer(bytes: Array(audio[start..<min(audio.count, start + 16_384)])))
            }
            feed.finish()
            request.body = .stream(chunks, length: .unknown)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            #expect(response.status.code == 413)
            let failed = try await h.watch(meeting, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && $0.stage == "failed" }
            }
            #expect(failed.events.contains { $0.type == "error" && $0.data["code"] as? String == "too_large" })
        }
    }

    @Test func unsupportedContentTypeAndMultipartUpload() async throws {
        let meetingAudio = try ServerFixture.standup()
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Form", token: token)
            let wrongType = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: Data("hi".utf8), contentType: "text/plain")
            #expect(wrongType.status == 415)
            let audio = try Data(contentsOf: URL(fileURLWithPath: meetingAudio.audioPath))
            var form = Data()
            form.append(Data("--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nignored\r\n".utf8))
            form.append(
                Data(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"m.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
                        .utf8))
            form.append(audio)
            form.append(Data("\r\n--XyZ--\r\n".utf8))
            let upload = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: form,
                contentType: "multipart/form-data; boundary=XyZ")
            #expect(upload.status == 202, "\(upload.text)")
            let seen = try await h.watch(meeting, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            #expect(seen.events.last?.stage == "completed")
            // The stored audio is the file part alone, byte for byte.
            let stored = try Data(
                contentsOf: URL(fileURLWithPath: h.server.settings.engine.audioDirectory + "/\(meeting).audio"))
            #expect(stored.count == audio.count)
            #expect(stored.elementsEqual(audio))  // a Bool: a failure must not diff two megabytes
            // A part header whose name is not ASCII is refused (MultipartKit would trap on it),
            // and the server goes on.
            let other = try await h.meeting("Bad form", token: token)
            let bad = Data(
                "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX-\u{e9}: 1\r\n\r\nx\r\n--XyZ--\r\n".utf8)
            let refused = try await h.request(
                .PUT, "/api/meetings/\(other)/audio", token: token, body: bad,
                contentType: "multipart/form-data; boundary=XyZ")
            #expect(refused.status == 400, "\(refused.text)")
            #expect(try await h.request(.GET, "/health").status == 200)
        }
    }

    /// The guard that keeps non-ASCII header names from MultipartKit follows delimiters and
    /// header lines across pieces cut anywhere: a good body passes whole or cut at any byte, a
    /// bad header name is found wherever the cut falls, and non-ASCII content is no concern.
    @Test func aNonASCIIHeaderNameIsFoundWhereverTheBodyIsCut() {
        let good = Array(
            "pre\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\u{e9}.wav\"\r\n\r\n\u{e9}\u{e9}\r\n\r\n-\r\n--bx\r\n--b\r\nA: \u{e9}\r\n\r\n\u{e9}\r\n--b--\r\n"
                .utf8)
        let bad = Array("--b\r\nA: 1\r\n\r\n\u{e9}\r\n--b\r\nN\u{e9}: 1\r\n\r\nx\r\n--b--\r\n".utf8)
        func accepts(_ body: [UInt8], cut: Int) -> Bool {
            let guarded = HeaderNameGuard(boundary: "b")
            return body[..<cut].withUnsafeBytes { guarded.accepts($0) }
                && body[cut...].withUnsafeBytes { guarded.accepts($0) }
        }
        #expect((0...good.count).allSatisfy { accepts(good, cut: $0) })
        #expect((0...bad.count).allSatisfy { !accepts(bad, cut: $0) })
    }

    /// An M4A as phones and Zoom write it (index at the end), sent as bytes of no declared
    /// type: the bytes say what it is; decoding waits for the end of the upload and says so; the
    /// meeting completes and plays back as MP4 audio.
    @Test func anM4AWithItsIndexAtTheEndIsProcessedAndPlayedBack() async throws {
        let meetingAudio = try ServerFixture.standup()
        let m4a = try TestScratch.file("phone.m4a")
        try FFmpegCommandLine.convert(meetingAudio.audioPath, to: m4a, ["-c:a", "aac"])
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Phone", token: token)
            let audio = try Data(contentsOf: URL(fileURLWithPath: m4a))
            let upload = try await h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio,
                contentType: "application/octet-stream")
            #expect(upload.status == 202, "\(upload.text)")
            let seen = try await h.watch(meeting, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            #expect(seen.events.last?.stage == "completed")
            let waited = seen.events.first { $0.type == "status" && $0.stage == "upload" && $0.state == "progress" }
            #expect((waited?.data["detail"] as? String)?.contains("waiting for the end of the upload") == true)
            let state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            #expect((state.json["speakers"] as? [Any])?.count == 3)
            #expect(((state.json["segments"] as? [Any])?.count ?? 0) >= 5)
            let played = try await h.request(.GET, "/api/meetings/\(meeting)/audio", token: token)
            #expect(played.status == 200)
            #expect(played.headers.first { $0.0.lowercased() == "content-type" }?.1 == "audio/mp4")
        }
    }

    @Test func twoUploadsToOneMeetingAtOnceOneIsRefused() async throws {
        let audio = try Data(contentsOf: URL(fileURLWithPath: try ServerFixture.standup().audioPath))
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Twice", token: token)
            async let first = h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            async let second = h.request(
                .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
            let statuses = try await [first.status, second.status].sorted()
            #expect(statuses == [202, 409])
            let seen = try await h.watch(meeting, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            #expect(seen.events.last?.stage == "completed")
        }
    }

    @Test func concurrentUploadsToDifferentMeetings() async throws {
        let one = try ServerFixture.standup(seed: 1)
        let two = try ServerFixture.standup(seed: 2)
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let first = try await h.meeting("One", token: alice)
            let second = try await h.meeting("Two", token: bob)
            async let a = h.request(
                .PUT, "/api/meetings/\(first)/audio", token: alice,
                body: try Data(contentsOf: URL(fileURLWithPath: one.audioPath)), contentType: "audio/wav")
            async let b = h.request(
                .PUT, "/api/meetings/\(second)/audio", token: bob,
                body: try Data(contentsOf: URL(fileURLWithPath: two.audioPath)), contentType: "audio/wav")
            #expect(try await a.status == 202)
            #expect(try await b.status == 202)
            async let doneA = h.watch(first, token: alice, query: "&since=0") { m in
                m.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            async let doneB = h.watch(second, token: bob, query: "&since=0") { m in
                m.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            let (seenA, seenB) = try await (doneA, doneB)
            for seen in [seenA, seenB] {
                #expect(seen.events.last?.stage == "completed")
                #expect(seen.offsets == Array(1...(seen.offsets.last ?? 0)))
            }
            // Each meeting's events carry its own id only.
            #expect(seenA.events.allSatisfy { $0.fields["meeting_id"] as? String == first })
            #expect(seenB.events.allSatisfy { $0.fields["meeting_id"] as? String == second })
        }
    }
}
