import Foundation
import HummingbirdWSClient
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ParleyHub
import ParleySynth
import ParleyTestSupport
import Synchronization
import Testing

@testable import ParleyServer

/// Live recording through `/ws/meeting/{id}/ingest` with a real WebSocket client: raw PCM in,
/// acknowledgements out, a dropped connection resumed without gap or duplicate, and bad input.
@Suite struct IngestTests {
    /// The standup meeting recorded live at four times real time: the connection is cut after
    /// 40% (with frames in flight whose acks were never read), the client resumes from its last
    /// ack, and stops at the end. Transcript events arrive before stop; the stored WAV is exactly
    /// the PCM that was sent; the meeting completes with its speakers and action items.
    @Test func aMeetingRecordedLiveIsTranscribedWhileItArrivesAndSurvivesADroppedConnection() async throws {
        let standup = try ServerFixture.standup()
        let pcm = try Self.pcm16Mono16k(standup.audioPath)
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Live standup", token: token)
            let connected = Signal<Void>()
            let stopSent = Mutex<Date?>(nil)
            let transcriptBeforeStop = Mutex(false)
            async let watched = h.watch(meeting, token: token, timeout: .seconds(600)) { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            } onMessage: { wire in
                if wire.type == "connected" { connected.complete(()) }
                if wire.type == "transcript", stopSent.withLock({ $0 == nil }) {
                    transcriptBeforeStop.withLock { $0 = true }
                }
            }
            try await connected.value()

            let chunk = 3200  // 100 ms
            let cut = pcm.count * 2 / 5 / chunk * chunk
            // First connection: 40% of the meeting, then two more frames sent and the socket
            // closed without reading their acks.
            let first = try await h.ingest(meeting, token: token) { inbound, outbound in
                var acked = 0
                var offset = 0
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                while offset < cut {
                    try await outbound.write(.binary(ByteBuffer(bytes: pcm[offset..<offset + chunk])))
                    offset += chunk
                    acked = try await Self.nextAck(&messages)
                    try await Task.sleep(for: .milliseconds(25))
                }
                for _ in 0..<2 {
                    try await outbound.write(.binary(ByteBuffer(bytes: pcm[offset..<offset + chunk])))
                    offset += chunk
                }
                return acked
            }
            #expect(first == cut)
            // Second connection: resumes from the last ack it read, sends the rest, stops.
            let stopped = try await h.ingest(meeting, token: token, query: "&resume=\(first)") { inbound, outbound in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                var offset = first
                while offset < pcm.count {
                    let end = min(pcm.count, offset + chunk)
                    try await outbound.write(.binary(ByteBuffer(bytes: pcm[offset..<end])))
                    offset = end
                    // The server had the two unacknowledged frames already: it skips them.
                    #expect(try await Self.nextAck(&messages) == max(offset, first + 2 * chunk))
                    try await Task.sleep(for: .milliseconds(25))
                }
                stopSent.withLock { $0 = Date() }
                try await outbound.write(.text(#"{"type":"stop"}"#))
                while let message = try await messages.next() {
                    if case .text(let text) = message, Wire(text).type == "stopped" { return text }
                }
                return ""
            }
            #expect(Wire(stopped).fields["bytes"] as? Int == pcm.count)
            #expect(Wire(stopped).fields["reason"] as? String == "stop")

            let seen = try await watched
            #expect(transcriptBeforeStop.withLock { $0 }, "a transcript event arrived while recording")
            #expect(seen.events.last?.stage == "completed")
            #expect(seen.offsets == Array(1...(seen.offsets.last ?? 0)))
            let state = try await h.request(.GET, "/api/meetings/\(meeting)", token: token)
            #expect(state.json["status"] as? String == "completed")
            #expect((state.json["speakers"] as? [Any])?.count == 3)
            #expect(((state.json["action_items"] as? [Any])?.count ?? 0) >= 2)
            // The recording is kept as a WAV holding exactly what was sent, once.
            let audio = try await h.request(.GET, "/api/meetings/\(meeting)/audio", token: token)
            #expect(audio.status == 200)
            #expect(audio.headers.first { $0.0.lowercased() == "content-type" }?.1 == "audio/wav")
            let stored = [UInt8](audio.body)
            #expect(stored.count == pcm.count + 44)
            #expect(Array(stored.dropFirst(44)) == pcm, "no gap and no duplicate")
            #expect(try Self.pcm16Mono16k(bytes: stored) == pcm, "the header says the true length")
        }
    }

    @Test func badInputIsAnsweredAndTheRecordingGoesOn() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let (_, carol) = try await h.user("carol")
            let meeting = try await h.meeting("Bad input", token: alice)
            _ = try await h.request(.POST, "/api/meetings/\(meeting)/members", json: ["username": "bob"], token: alice)
            _ = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "carol", "can_edit": true], token: alice)
            // Refused before the upgrade: a viewer without edit rights, a stranger, a bad resume,
            // a resume with no recording running.
            let refusals: [(String, Int, String)] = [
                ("/ws/meeting/\(meeting)/ingest?token=\(bob)", 403, "a member who may not edit"),
                ("/ws/meeting/\(meeting)/ingest", 401, "no token"),
                ("/ws/meeting/\(meeting)/ingest?token=\(alice)&resume=x", 400, "a resume that is not a count"),
                ("/ws/meeting/\(meeting)/ingest?token=\(alice)&resume=3200", 409, "nothing to resume"),
                ("/ws/meeting/\(meeting)/record?token=\(alice)", 404, "no such endpoint"),
            ]
            // A plain GET (no upgrade) gets the same first answers, then 426.
            #expect(try await h.request(.GET, "/ws/meeting/\(meeting)/ingest").status == 401)
            #expect(try await h.request(.GET, "/ws/meeting/\(meeting)/ingest?token=\(alice)&resume=-1").status == 400)
            #expect(try await h.request(.GET, "/ws/meeting/\(meeting)/ingest?token=\(alice)").status == 426)
            for (path, status, why) in refusals {
                let socket = try RawSocket(port: h.port)
                socket.upgrade(path)
                let (got, text) = await socket.readHead()
                #expect(got == status, "\(why): \(text)")
            }
            // A member with edit rights records; bad frames get errors and change nothing.
            let tone = Self.tone(seconds: 1)
            let texts = try await h.ingest(meeting, token: carol) { inbound, outbound in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                var replies: [String] = []
                func next() async throws {
                    while let message = try await messages.next() {
                        if case .text(let text) = message {
                            replies.append(text)
                            return
                        }
                    }
                }
                try await outbound.write(.text("not json"))
                try await next()
                try await outbound.write(.binary(ByteBuffer(bytes: [1, 2, 3])))
                try await next()
                try await outbound.write(.text(#"{"type":"dance"}"#))
                try await next()
                try await outbound.write(.binary(ByteBuffer(bytes: tone)))
                try await next()
                try await outbound.write(.text(#"{"type":"ping"}"#))
                try await next()
                try await outbound.write(.text(#"{"type":"stop"}"#))
                try await next()
                return replies
            }
            let replies = texts.map { Wire($0).fields }
            let codes = replies.map {
                ($0["data"] as? [String: Any])?["code"] as? String ?? $0["type"] as? String ?? ""
            }
            #expect(codes == ["bad_message", "odd_length", "unknown_type", "ack", "pong", "stopped"])
            #expect(replies[3]["bytes"] as? Int == tone.count)
            #expect(replies[5]["bytes"] as? Int == tone.count)
            // The meeting has audio now: a second recording is refused, as is one after it ended.
            let again = try RawSocket(port: h.port)
            again.upgrade("/ws/meeting/\(meeting)/ingest?token=\(alice)")
            let (status, text) = await again.readHead()
            #expect(status == 409)
            #expect(text.contains("recording_ended") || text.contains("has_audio"), "\(text)")
            #expect(try await h.request(.GET, "/health").status == 200)
        }
    }

    /// A page closed without Stop: the recording is finished after the idle timeout with what
    /// arrived; a newer connection replaces an older one that is still open.
    @Test func anAbandonedRecordingFinishesAfterTheIdleTimeout() async throws {
        let settings = try ServerFixture.settings { $0.liveIdleTimeout = 2 }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Abandoned", token: alice)
            let tone = Self.tone(seconds: 2)
            let half = tone.count / 2
            async let watched = h.watch(meeting, token: alice, timeout: .seconds(120)) { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            // An older connection stays open; the newer one takes over and it is closed with 4010.
            let older = try RawSocket(port: h.port)
            older.upgrade("/ws/meeting/\(meeting)/ingest?token=\(alice)")
            #expect(await older.readUpgradeHead().status == 101)
            let acked = try await h.ingest(meeting, token: alice, query: "&resume=0") { inbound, outbound in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                try await outbound.write(.binary(ByteBuffer(bytes: tone[..<half])))
                #expect(try await Self.nextAck(&messages) == half)
                try await outbound.write(.binary(ByteBuffer(bytes: tone[half...])))
                return try await Self.nextAck(&messages)
            }
            #expect(acked == tone.count)
            let (code, _, _) = await older.readUntilClose(limit: 10)
            #expect(code == 4010)
            let seen = try await watched
            #expect(seen.events.last?.stage == "completed")
            let audio = try await h.request(.GET, "/api/meetings/\(meeting)/audio", token: alice)
            #expect([UInt8](audio.body) == PCMTestFormat.waveHeader(dataBytes: tone.count) + tone)
        }
    }

    /// The server stops in the middle of a recording and starts again: the recording goes on.
    /// The client reconnects (refused with 503 `recording_moving` until the new start has taken
    /// the meeting over), resumes from an ack older than what the server stored, sends the rest
    /// and stops: the stored WAV is exactly the PCM sent, with no gap and no duplicate, and the
    /// meeting is processed again from its beginning (`restarted`) to `completed`.
    @Test func aRecordingCutByAServerRestartContinuesWhenTheClientResumes() async throws {
        let data = try ServerFixture.scratch("live-restart-resume")
        let pcm = try Self.pcm16Mono16k(try ServerFixture.standup().audioPath)
        let cut = pcm.count / 2 / 3200 * 3200
        let (token, meeting, acked) = try await Self.recordThenStop(Array(pcm[..<cut]), data: data)
        #expect(acked == cut)
        try await ServerFixture.withServer(try ServerFixture.settings(dataDirectory: data), recover: true) { h in
            async let watched = h.watch(meeting, token: token, query: "&since=0", timeout: .seconds(600)) {
                messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            // The client last read an ack 1 s before the cut: it resends that second too.
            let resume = cut - 32_000
            var moving = 0
            while true {
                let probe = try RawSocket(port: h.port)
                probe.upgrade("/ws/meeting/\(meeting)/ingest?token=\(token)&resume=\(resume)")
                let status = await probe.readUpgradeHead().status
                if status == 101 { break }
                #expect(status == 503, "a reconnect before the takeover is answered 503, not \(status)")
                moving += 1
                try #require(moving < 300, "the restarted server never continued the recording")
                try await Task.sleep(for: .milliseconds(100))
            }
            let stopped = try await h.ingest(meeting, token: token, query: "&resume=\(resume)") { inbound, outbound in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                for at in stride(from: resume, to: pcm.count, by: 32_000) {
                    try await outbound.write(.binary(ByteBuffer(bytes: pcm[at..<min(pcm.count, at + 32_000)])))
                    _ = try await Self.nextAck(&messages)
                }
                try await outbound.write(.text(#"{"type":"stop"}"#))
                while let message = try await messages.next() {
                    if case .text(let text) = message, Wire(text).type == "stopped" { return Wire(text) }
                }
                return Wire("{}")
            }
            #expect(stopped.fields["bytes"] as? Int == pcm.count)
            #expect(stopped.fields["reason"] as? String == "stop")
            let seen = try await watched
            #expect(seen.events.last?.stage == "completed")
            let restart = try #require(seen.events.firstIndex { $0.type == "status" && $0.state == "restarted" })
            #expect(seen.events[restart...].contains { $0.type == "transcript" })
            #expect(seen.events[restart...].contains { $0.type == "action_items" })
            let audio = try await h.request(.GET, "/api/meetings/\(meeting)/audio", token: token)
            #expect([UInt8](audio.body) == PCMTestFormat.waveHeader(dataBytes: pcm.count) + pcm)
            #expect(!FileManager.default.fileExists(atPath: data + "/audio/\(meeting).audio.live"))
        }
    }

    /// The server stops in the middle of a recording and the client never comes back: the next
    /// start waits the idle timeout for it, then finishes the recording with the audio that was
    /// stored and processes it; a resume after that is refused as ended.
    @Test func aRecordingCutByAServerStopIsFinishedWithWhatWasStoredWhenNobodyResumes() async throws {
        let data = try ServerFixture.scratch("live-restart")
        let pcm = Array(try Self.pcm16Mono16k(try ServerFixture.standup().audioPath).prefix(20 * 32_000))
        let (token, meeting, acked) = try await Self.recordThenStop(pcm, data: data)
        #expect(acked == pcm.count)
        let settings = try ServerFixture.settings(dataDirectory: data) { $0.liveIdleTimeout = 2 }
        try await ServerFixture.withServer(settings, recover: true) { h in
            let seen = try await h.watch(meeting, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            #expect(seen.events.last?.stage == "completed")
            #expect(seen.events.contains { $0.type == "status" && $0.state == "restarted" })
            let audio = try await h.request(.GET, "/api/meetings/\(meeting)/audio", token: token)
            #expect([UInt8](audio.body) == PCMTestFormat.waveHeader(dataBytes: pcm.count) + pcm)
            #expect(!FileManager.default.fileExists(atPath: data + "/audio/\(meeting).audio.live"))
            let socket = try RawSocket(port: h.port)
            socket.upgrade("/ws/meeting/\(meeting)/ingest?token=\(token)&resume=\(pcm.count)")
            let (status, text) = await socket.readHead()
            #expect(status == 409)
            #expect(text.contains("recording_ended"), "\(text)")
        }
    }

    /// The client's connection dropped and the pipeline has read everything stored: the server
    /// still stops at once when asked (the pipeline's read of a paused recording gives way to
    /// the shutdown instead of waiting for audio that may never come).
    @Test func aServerStopsWhileARecordingWaitsForItsClient() async throws {
        let stopped = Completion<Void>()
        let server = Task {
            try await ServerFixture.withServer(try ServerFixture.settings()) { h in
                let (_, alice) = try await h.user("alice")
                let meeting = try await h.meeting("Paused", token: alice)
                let tone = Self.tone(seconds: 2)
                let acked = try await h.ingest(meeting, token: alice) { inbound, outbound in
                    var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                    try await outbound.write(.binary(ByteBuffer(bytes: tone)))
                    return try await Self.nextAck(&messages)
                }
                #expect(acked == tone.count)
                // Time for the pipeline to read the two seconds and wait for more.
                try await Task.sleep(for: .seconds(1))
            }
            stopped.complete(())
        }
        let ended: Void? = await stopped.value(within: .seconds(60))
        #expect(ended != nil, "the server did not stop within 60 s of a paused recording")
        if ended != nil { try await server.value }
    }

    /// A reader of a growing file that waits for more ends when its task is cancelled, with
    /// what it read so far.
    @Test func aReaderWaitingForMoreOfAnUploadEndsWhenCancelled() async throws {
        let file = try UploadFile(path: try ServerFixture.scratch("upload-file") + "/audio")
        try file.append(ByteBuffer(bytes: [1, 2, 3, 4]))
        let first = Completion<Void>()
        let ended = Completion<(any Error)?>()
        let reader = Task {
            do {
                for try await chunk in file.chunks() where chunk == [1, 2, 3, 4] { first.complete(()) }
                ended.complete(nil)
            } catch {
                ended.complete(error)
            }
        }
        await first.value
        try await Task.sleep(for: .milliseconds(100))  // waiting for more by now
        reader.cancel()
        let outcome = await ended.value(within: .seconds(30))
        #expect(outcome != nil, "the cancelled reader still waits")
        if case .some(.some(let error)) = outcome { #expect(error is CancellationError, "\(error)") }
        file.finish()
    }

    /// Starts a server on `data`, records `pcm` into a new meeting (a second at a time, each
    /// acknowledged), leaves the connection, and stops the server mid-recording.
    static func recordThenStop(_ pcm: [UInt8], data: String) async throws -> (
        token: String, meeting: String, acked: Int
    ) {
        try await ServerFixture.withServer(try ServerFixture.settings(dataDirectory: data)) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Cut by a restart", token: token)
            let acked = try await h.ingest(meeting, token: token) { inbound, outbound in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                var last = 0
                for at in stride(from: 0, to: pcm.count, by: 32_000) {
                    try await outbound.write(.binary(ByteBuffer(bytes: pcm[at..<min(pcm.count, at + 32_000)])))
                    last = try await Self.nextAck(&messages)
                }
                return last
            }
            return (token, meeting, acked)
        }
    }

    // MARK: Helpers

    static func nextAck(_ messages: inout WebSocketInboundMessageStream.AsyncIterator) async throws -> Int {
        while let message = try await messages.next() {
            if case .text(let text) = message {
                let wire = Wire(text)
                if wire.type == "ack" { return wire.fields["bytes"] as? Int ?? -1 }
                Issue.record("unexpected message \(text)")
            }
        }
        throw CancellationError()
    }

    /// A 440 Hz tone as 16 kHz mono s16le.
    static func tone(seconds: Double) -> [UInt8] {
        var bytes: [UInt8] = []
        for i in 0..<Int(seconds * 16_000) {
            let value = Int16(8000 * sin(2 * Double.pi * 440 * Double(i) / 16_000))
            withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
        }
        return bytes
    }

    static func pcm16Mono16k(_ path: String) throws -> [UInt8] {
        try pcm16Mono16k(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// The samples of a 16-bit mono 16 kHz WAV (its `data` chunk, as long as its header says).
    static func pcm16Mono16k(bytes: [UInt8]) throws -> [UInt8] {
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        try #require(bytes.count >= 44 && String(decoding: bytes[8..<12], as: UTF8.self) == "WAVE")
        var at = 12
        while at + 8 <= bytes.count {
            let id = String(decoding: bytes[at..<at + 4], as: UTF8.self)
            let size = u32(at + 4)
            if id == "fmt " {
                try #require(u16(at + 8) == 1 && u16(at + 10) == 1 && u32(at + 12) == 16_000 && u16(at + 22) == 16)
            }
            if id == "data" { return Array(bytes[(at + 8)..<min(bytes.count, at + 8 + size)]) }
            at += 8 + size + size % 2
        }
        throw CancellationError()
    }
}

/// The 44-byte header the server writes, built here from the WAV format's definition.
enum PCMTestFormat {
    static func waveHeader(dataBytes: Int) -> [UInt8] {
        var header: [UInt8] = []
        func put(_ text: String) { header += Array(text.utf8) }
        func put32(_ value: Int) { withUnsafeBytes(of: UInt32(value).littleEndian) { header += $0 } }
        func put16(_ value: Int) { withUnsafeBytes(of: UInt16(value).littleEndian) { header += $0 } }
        put("RIFF")
        put32(36 + dataBytes)
        put("WAVE")
        put("fmt ")
        put32(16)
        put16(1)
        put16(1)
        put32(16_000)
        put32(32_000)
        put16(2)
        put16(16)
        put("data")
        put32(dataBytes)
        return header
    }
}

extension Harness {
    /// Opens the meeting's ingest socket and runs `body` with it; the connection is closed
    /// (normally) when `body` returns.
    func ingest<T: Sendable>(
        _ meetingID: String, token: String, query: String = "",
        _ body: @escaping @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> T
    ) async throws -> T {
        let result = Mutex<T?>(nil)
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 1 << 16
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)/ws/meeting/\(meetingID)/ingest?token=\(token)\(query)",
            configuration: configuration, logger: ServerFixture.logger
        ) { inbound, outbound, _ in
            let value = try await body(inbound, outbound)
            result.withLock { $0 = value }
        }
        return try #require(result.withLock { $0 })
    }
}
