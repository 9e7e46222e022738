import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOWebSocket
import ParleyAudio
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyPluginAPI
import ParleyPlugins
import ParleyServer
import ParleyStore
import ParleySynth
import ParleyTestSupport
import Synchronization
import Testing

/// A live Parley server on a free port with its own data directory, and the HTTP and
/// WebSocket clients the tests talk to it with (AsyncHTTPClient and Hummingbird's
/// WebSocketClient: real sockets, real frames).
struct Harness: Sendable {
    let port: Int
    let server: ParleyServer!

    var base: String { "http://127.0.0.1:\(port)" }

    struct Reply: Sendable {
        let status: Int
        let body: Data
        let headers: [(String, String)]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    @discardableResult
    func request(
        _ method: HTTPMethod, _ path: String, json: [String: any Sendable]? = nil, token: String? = nil,
        body: Data? = nil, contentType: String? = nil, headers extra: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        } else if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/octet-stream")
            request.body = .bytes(ByteBuffer(data: body))
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(
            status: Int(response.status.code), body: Data(buffer: bytes),
            headers: response.headers.map { ($0.name, $0.value) })
    }

    /// Registers and logs in; returns the user's id and access token.
    func user(_ name: String, password: String = "correct horse") async throws -> (id: String, token: String) {
        let registered = try await request(.POST, "/api/auth/register", json: ["username": name, "password": password])
        #expect(registered.status == 201, "\(registered.text)")
        let login = try await request(.POST, "/api/auth/login", json: ["username": name, "password": password])
        #expect(login.status == 200, "\(login.text)")
        return (registered.json["id"] as? String ?? "", login.json["access_token"] as? String ?? "")
    }

    func meeting(_ title: String, token: String) async throws -> String {
        let reply = try await request(.POST, "/api/meetings", json: ["title": title], token: token)
        #expect(reply.status == 201)
        return reply.json["id"] as? String ?? ""
    }

    /// Makes a meeting, uploads `audio` (a WAV) to it and waits, watching, until processing
    /// ends; returns its id, the watched events and its state (`GET /api/meetings/{id}`).
    func process(_ title: String, audio: Data, token: String) async throws -> (
        id: String, seen: Watched, state: [String: Any]
    ) {
        let meeting = try await self.meeting(title, token: token)
        async let processed = watch(meeting, token: token) { messages in
            messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
        }
        try await Task.sleep(for: .milliseconds(200))
        let upload = try await request(
            .PUT, "/api/meetings/\(meeting)/audio", token: token, body: audio, contentType: "audio/wav")
        #expect(upload.status == 202, "\(upload.text)")
        let seen = try await processed
        return (meeting, seen, try await request(.GET, "/api/meetings/\(meeting)", token: token).json)
    }

    /// Publishes `count` synthetic events through the development route.
    @discardableResult
    func publish(_ meetingID: String, count: Int, size: Int = 100, token: String) async throws -> Reply {
        try await request(
            .POST, "/api/dev/meetings/\(meetingID)/events", json: ["count": count, "size": size], token: token)
    }
}

/// One message a WebSocket client received.
struct Wire: Sendable, CustomStringConvertible {
    let text: String
    let type: String
    let offset: Int?

    init(_ text: String) {
        self.text = text
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        type = object["type"] as? String ?? ""
        offset = object["offset"] as? Int
    }

    var fields: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }

    var data: [String: Any] { fields["data"] as? [String: Any] ?? [:] }
    var stage: String? { data["stage"] as? String }
    var state: String? { data["state"] as? String }
    var recovered: Bool? { fields["recovered"] as? Bool }
    var description: String { text.count > 200 ? String(text.prefix(200)) + "..." : text }
}

extension Array where Element == Wire {
    /// The offset of the latest numbered event (not `connected`, which carries the log's latest).
    var lastEventOffset: Int? { last { $0.offset != nil && $0.type != "connected" }?.offset }
}

/// What a watching client saw, and how its socket was closed.
struct Watched: Sendable {
    let messages: [Wire]
    let close: WebSocketCloseFrame?
    var events: [Wire] { messages.filter { $0.offset != nil && $0.type != "connected" } }
    var offsets: [Int] { events.compactMap(\.offset) }
}

extension Harness {
    /// Connects to a meeting's WebSocket and collects messages until `until` says so (then
    /// closes normally), the server closes, or `timeout` passes.
    func watch(
        _ meetingID: String, token: String, query: String = "", timeout: Duration = .seconds(120),
        headers: [(String, String)] = [], until: @escaping @Sendable ([Wire]) -> Bool,
        onMessage: @escaping @Sendable (Wire) async throws -> Void = { _ in }
    ) async throws -> Watched {
        try await listen(
            "/ws/meeting/\(meetingID)", token: token, query: query, timeout: timeout, headers: headers, until: until,
            onMessage: onMessage)
    }

    /// Connects to the WebSocket at `path` (a meeting's, the user's own) and collects messages
    /// like ``watch(_:token:query:timeout:headers:until:onMessage:)``.
    func listen(
        _ path: String, token: String, query: String = "", timeout: Duration = .seconds(120),
        headers: [(String, String)] = [], until: @escaping @Sendable ([Wire]) -> Bool,
        onMessage: @escaping @Sendable (Wire) async throws -> Void = { _ in }
    ) async throws -> Watched {
        let collected = Collected()
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 1 << 22
        for (name, value) in headers {
            configuration.additionalHeaders[HTTPField.Name(name)!] = value
        }
        let close = try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)\(path)?token=\(token)\(query)", configuration: configuration,
            logger: Logger(label: "ws-test")
        ) { inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: timeout)
                    Issue.record("listening to \(path) timed out after \(timeout)")
                    try await outbound.close(.normalClosure, reason: "timeout")
                }
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case .text(let text) = message else { continue }
                        let wire = Wire(text)
                        let all = collected.messages.withLock {
                            $0.append(wire); return $0
                        }
                        try await onMessage(wire)
                        if until(all) {
                            try await outbound.close(.normalClosure, reason: "done")
                            return
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        return Watched(messages: collected.messages.withLock { $0 }, close: close)
    }
}

final class Collected: Sendable {
    let messages = Mutex<[Wire]>([])
}

enum ServerFixture {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static func scratch(_ name: String) throws -> String {
        try TestScratch.folder("server-\(name)")
    }

    static var logger: Logger {
        var logger = Logger(label: "server-test")
        logger.logLevel =
            ProcessInfo.processInfo.environment["PARLEY_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
            ?? .warning
        return logger
    }

    /// Settings for tests: a fresh data directory, fast bcrypt, development routes on.
    static func settings(dataDirectory: String? = nil, _ adjust: (inout ServerSettings) -> Void = { _ in }) throws
        -> ServerSettings
    {
        var settings = ServerSettings()
        settings.port = 0
        settings.engine.dataDirectory = try dataDirectory ?? scratch("data")
        settings.bcryptCost = 4
        settings.development = true
        adjust(&settings)
        return settings
    }

    /// The pipeline the server runs: whisper (the real engine) and the extractive summarizer.
    static func pipeline(transcriber: String = "whisper", settings: [String: String] = [:])
        -> @Sendable (DiarizationRequest) async throws
        -> MeetingPipeline
    {
        { request in
            // The classic diarizer (the generator's voices), with the meeting's speaker count hints.
            let registry = PluginRegistry.builtIn
            var options = PipelineOptions()
            options.diarization.speakers = request.speakers
            options.diarization.minSpeakers = request.minSpeakers ?? 1
            options.diarization.maxSpeakers = request.maxSpeakers ?? max(8, request.speakers ?? 0)
            return MeetingPipeline(
                transcriber: try registry.transcriber(
                    transcriber, settings: PluginSettings(settings, section: "transcriber.\(transcriber)")),
                summarizer: try registry.summarizer("extractive", settings: PluginSettings([:])), options: options)
        }
    }

    /// Runs `body` against a live server; the server stops (and its store closes) afterwards.
    static func withServer<T: Sendable>(
        _ settings: ServerSettings, transcriber: String = "whisper",
        recover: Bool = false,
        _ body: @escaping @Sendable (Harness) async throws -> T
    ) async throws -> T {
        let server = try await ParleyServer.build(
            settings: settings, logger: logger, makePipeline: pipeline(transcriber: transcriber))
        do {
            let result = try await server.application.test(.live) { client in
                // Hummingbird's test client connects in the background, and closed before it is
                // connected it never closes that connection: one request makes sure it is (it
                // speaks plain HTTP; a TLS server closes its silent connection when it stops).
                if settings.tlsCertificate == nil { _ = try await client.execute(uri: "/health", method: .get) }
                let harness = Harness(port: client.port!, server: server)
                if recover { try await server.recover() }
                return try await body(harness)
            }
            try await server.store.close()
            return result
        } catch {
            try? await server.store.close()
            throw error
        }
    }

    /// The built-in standup meeting (about a minute, three voices), made once per run.
    static func standup(seed: UInt64 = 1) throws -> MeetingGenerator.Output {
        try GeneratedMeetings.standup(seed: seed)
    }
}

extension Completion {
    /// The value, or nil when `limit` passes first: the waiting is given up, whatever would
    /// complete it goes on (a test's bound on something that must not hang).
    func value(within limit: Duration) async -> Value? {
        let outcome = Completion<Value?>()
        Task { outcome.complete(await self.value) }
        Task {
            try? await Task.sleep(for: limit)
            outcome.complete(nil)
        }
        return await outcome.value
    }
}
