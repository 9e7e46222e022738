import Foundation
import HummingbirdWSClient
import NIOHTTP1
import NIOWebSocket
import ParleyJobs
import ParleySynth
import Testing

@testable import ParleyServer

/// The WebSocket hub over real sockets: admission, numbering, replay, presence, keepalive,
/// backpressure and expiry.
@Suite struct WebSocketTests {
    @Test func refusedUpgradesGetTheirStatus() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (aliceID, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let meeting = try await h.meeting("Alice's", token: alice)
            let expired = try await h.server.accessToken(userID: aliceID, username: "alice", lifetime: -5)
            let foreign = try await AuthTests.foreignToken(userID: aliceID)
            let cases: [(String, Int, String)] = [
                ("/ws/meeting/\(meeting)", 401, "missing token"),
                ("/ws/meeting/\(meeting)?token=abc", 401, "malformed token"),
                ("/ws/meeting/\(meeting)?token=\(expired)", 401, "expired token"),
                ("/ws/meeting/\(meeting)?token=\(foreign)", 401, "wrong signature"),
                ("/ws/meeting/\(meeting)?token=\(bob)", 403, "another user's meeting"),
                ("/ws/meeting/m_nothere?token=\(alice)", 404, "no such meeting"),
                ("/ws/meeting/\(meeting)?token=\(alice)&since=-3", 400, "bad since"),
            ]
            for (path, status, why) in cases {
                let socket = try RawSocket(port: h.port)
                socket.upgrade(path)
                let (got, text) = await socket.readHead()
                #expect(got == status, "\(why): \(text)")
                #expect(text.contains("\"error\""), "\(why): a JSON error body")
                #expect(!text.contains("101 Switching"))
            }
            // An Origin that is not the server's own is refused; the server's own is fine.
            let socket = try RawSocket(port: h.port)
            socket.upgrade("/ws/meeting/\(meeting)?token=\(alice)", headers: ["Origin: http://evil.example"])
            #expect(await socket.readHead().status == 403)
            let own = try RawSocket(port: h.port)
            own.upgrade("/ws/meeting/\(meeting)?token=\(alice)", headers: ["Origin: http://127.0.0.1"])
            #expect(await own.readUpgradeHead().status == 101)
            // The server keeps serving.
            #expect(try await h.request(.GET, "/health").status == 200)
        }
    }

    @Test func membersMayWatchAndTheTokenMayComeAsASubprotocol() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let meeting = try await h.meeting("Shared", token: alice)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)", token: bob).status == 403)
            let added = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "bob"], token: alice)
            #expect(added.status == 201)
            #expect(added.json["members"] as? [String] == ["bob"])
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)", token: bob).status == 200)
            let listed = try await h.request(.GET, "/api/meetings", token: bob)
            #expect((listed.json["meetings"] as? [[String: Any]])?.count == 1)
            // Only the owner adds members or uploads.
            let byMember = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "alice"], token: bob)
            #expect(byMember.status == 403)

            let socket = try RawSocket(port: h.port)
            socket.upgrade("/ws/meeting/\(meeting)", headers: ["Sec-WebSocket-Protocol: bearer, \(bob)"])
            let head = await socket.readHead()
            #expect(head.status == 101)
            #expect(head.text.lowercased().contains("sec-websocket-protocol: bearer"))
        }
    }

    @Test func eventsAreNumberedAndReplayedWithoutGapOrDuplicate() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Replay", token: alice)
            // A first watcher sees 1...50 live (published once it is connected).
            let connected = Signal<Void>()
            async let live = h.watch(meeting, token: alice) {
                $0.lastEventOffset == 50
            } onMessage: { wire in
                if wire.type == "connected" { connected.complete(()) }
            }
            try await connected.value()
            #expect(try await h.publish(meeting, count: 50, token: alice).status == 200)
            let first = try await live
            #expect(first.messages.first?.type == "connected")
            #expect(first.messages.first?.recovered == false)
            #expect(first.offsets == Array(1...50))

            // While nobody watches, 51...80 happen; a client that saw up to 50 replays exactly those,
            // then gets live ones (81...90) with no gap and no duplicate.
            try await h.publish(meeting, count: 30, token: alice)
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await h.publish(meeting, count: 10, token: alice)
            }
            let resumed = try await h.watch(meeting, token: alice, query: "&since=50") { $0.lastEventOffset == 90 }
            try await publisher.value
            #expect(resumed.messages.first?.type == "connected")
            #expect(resumed.messages.first?.recovered == true)
            #expect(resumed.messages.first?.offset == 80)
            #expect(resumed.offsets == Array(51...90))

            // since=0 replays everything; a since beyond the log, or another epoch, is not recovered.
            let all = try await h.watch(meeting, token: alice, query: "&since=0") { $0.lastEventOffset == 90 }
            #expect(all.offsets == Array(1...90))
            let ahead = try await h.watch(meeting, token: alice, query: "&since=500") { $0.count >= 1 }
            #expect(ahead.messages.first?.recovered == false)
            #expect(ahead.offsets.isEmpty)
            let otherEpoch = try await h.watch(meeting, token: alice, query: "&since=10&epoch=e_other") {
                $0.count >= 1
            }
            #expect(otherEpoch.messages.first?.recovered == false)

            // The REST state carries the same offset and epoch.
            let state = try await h.request(.GET, "/api/meetings/\(meeting)", token: alice)
            #expect(state.json["offset"] as? Int == 90)
            #expect(state.json["epoch"] as? String == first.messages.first?.fields["epoch"] as? String)
        }
    }

    @Test func replayReachesBeyondTheMemoryRingFromTheStore() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Long", token: alice)
            try await h.publish(meeting, count: 3000, size: 20, token: alice)  // the ring keeps 2048
            let replay = try await h.watch(meeting, token: alice, query: "&since=5") { $0.lastEventOffset == 3000 }
            #expect(replay.offsets == Array(6...3000))
        }
    }

    @Test func presenceListsWhoIsWatching() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let meeting = try await h.meeting("Presence", token: alice)
            try await h.request(.POST, "/api/meetings/\(meeting)/members", json: ["username": "bob"], token: alice)
            let joined = Signal<Void>()
            async let aliceSaw = h.watch(meeting, token: alice) { messages in
                messages.contains {
                    $0.type == "presence" && ($0.data["left"] as? [String: Any])?["username"] as? String == "bob"
                }
            } onMessage: { wire in
                if wire.type == "connected" { joined.complete(()) }
            }
            try await joined.value()
            let bobSaw = try await h.watch(meeting, token: bob) { $0.count >= 1 }
            let viewers = (bobSaw.messages.first?.fields["viewers"] as? [[String: Any]])?.compactMap {
                $0["username"] as? String
            }
            #expect(viewers == ["alice", "bob"])
            let seen = try await aliceSaw
            // Alice's own arrival, Bob's, Bob's departure.
            let presence = seen.messages.filter { $0.type == "presence" }.map { message in
                ["joined", "left"].compactMap { key in
                    ((message.data[key] as? [String: Any])?["username"] as? String).map { "\(key) \($0)" }
                }.joined()
            }
            #expect(presence == ["joined alice", "joined bob", "left bob"])
            // Presence is not part of the numbered log.
            #expect(seen.messages.filter { $0.type == "presence" }.allSatisfy { $0.offset == nil })
        }
    }

    @Test func pingGetsPongAndBadMessagesGetAnError() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Ping", token: alice)
            var configuration = WebSocketClientConfiguration()
            configuration.maxFrameSize = 1 << 16
            let seen = Signal<[String]>()
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(h.port)/ws/meeting/\(meeting)?token=\(alice)", configuration: configuration,
                logger: ServerFixture.logger
            ) { inbound, outbound, _ in
                var types: [String] = []
                var iterator = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                _ = try await iterator.next()  // connected
                try await outbound.write(.text(#"{"type":"ping"}"#))
                try await outbound.write(.text("not json"))
                try await outbound.write(.text(#"{"type":"dance"}"#))
                func next() async throws -> String? {
                    while case .text(let text) = try await iterator.next() {
                        let type = Wire(text).type
                        if type != "presence" { return type }
                    }
                    return nil
                }
                for _ in 0..<3 { if let type = try await next() { types.append(type) } }
                try await outbound.write(.text(#"{"type":"ping"}"#))
                if let type = try await next() { types.append(type) }
                seen.complete(types)
            }
            #expect(try await seen.value() == ["pong", "error", "error", "pong"])
        }
    }

    @Test func anOversizedMessageClosesTheSocketWith1009() async throws {
        let settings = try ServerFixture.settings { $0.maxMessageBytes = 1024 }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Big message", token: alice)
            let socket = try await RawSocket.watching(meeting, token: alice, port: h.port)
            socket.sendText(String(repeating: "x", count: 5000))
            let (code, _, _) = await socket.readUntilClose(limit: 10)
            #expect(code == 1009)
            #expect(try await h.request(.GET, "/health").status == 200)
        }
    }

    @Test func healthMetricsAndTheOpenAPIDocument() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let health = try await h.request(.GET, "/health")
            #expect(health.json["status"] as? String == "ok")
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Metrics", token: alice)
            try await h.publish(meeting, count: 5, token: alice)
            let metrics = try await h.request(.GET, "/metrics")
            #expect(metrics.status == 200)
            for name in ["parley_events_published_total", "parley_ws_connections", "parley_upload_bytes_total"] {
                #expect(metrics.text.contains(name), "\(name)")
            }
            let spec = try await h.request(.GET, "/openapi.json")
            #expect(spec.json["openapi"] as? String == "3.1.0")
            let paths = (spec.json["paths"] as? [String: Any])?.keys.sorted() ?? []
            for path in [
                "/api/auth/login", "/api/meetings/{id}/audio", "/ws/meeting/{id}", "/ws/meeting/{id}/ingest",
                "/metrics",
                "/api/meetings/{id}/speakers/{speaker}", "/api/meetings/{id}/action-items/{item}",
            ] {
                #expect(paths.contains(path), "\(path)")
            }
            let app = try await h.request(.GET, "/")
            #expect(app.status == 200 && app.text.contains("<script type=\"module\" src=\"/js/app.js\">"))
            let script = try await h.request(.GET, "/js/live.js")
            #expect(script.status == 200 && script.text.contains("export class LiveMeeting"))
            let unknown = try await h.request(.GET, "/nothing-here")
            #expect(unknown.status == 404)
            #expect(unknown.errorCode == "not_found")
            let plain = try await h.request(.GET, "/ws/meeting/\(meeting)?token=\(alice)")
            #expect(plain.status == 426)
        }
    }

    @Test func aSilentClientIsClosedAfterTwoKeepaliveIntervals() async throws {
        let settings = try ServerFixture.settings { $0.keepaliveInterval = 0.5 }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Silent", token: alice)
            let socket = try await RawSocket.watching(meeting, token: alice, port: h.port)
            // Never answers the ping frames: closed after about two intervals.
            // Closed by the keepalive (not at once, and long before the 20 s the read waits).
            let (code, texts, seconds) = await socket.readUntilClose(limit: 20)
            #expect(code == 1001)
            #expect(seconds > 0.4 && seconds < 15)
            #expect(texts >= 2)  // connected, and at least one {"type":"ping"}
        }
    }

    @Test func anExpiredTokenClosesTheSocketWith4001() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (id, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Expiry", token: alice)
            // Long enough to connect on a loaded machine (tests run in parallel under ASan).
            let short = try await h.server.accessToken(userID: id, username: "alice", lifetime: 6)
            let socket = try await RawSocket.watching(meeting, token: short, port: h.port)
            let (code, texts, seconds) = await socket.readUntilClose(limit: 30)
            #expect(code == 4001)
            #expect(texts >= 1)
            #expect(seconds < 20)  // the token lived 6 s; the read gives up at 30
        }
    }

    @Test func aSlowConsumerIsClosedWhileTheOthersKeepReceiving() async throws {
        let settings = try ServerFixture.settings { $0.engine.sendQueue = 64 }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Slow", token: alice)
            // The slow one: completes the handshake, then does not read.
            let slow = try await RawSocket.watching(meeting, token: alice, port: h.port, receiveBuffer: 4096)
            let count = 1500
            // swift-metrics is process-wide: count what this test adds.
            let slowBefore = try await Self.slowClientsClosed(h)
            // `since=0`: the fast one gets every event even if it connects after the first ones.
            async let fast = h.watch(meeting, token: alice, query: "&since=0") { $0.lastEventOffset == count }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            #expect(try await h.publish(meeting, count: count, size: 4000, token: alice).status == 200)
            let publishTime = ContinuousClock.now - started
            // Now read what the slow one was sent: a close with 4008 after fewer than all events.
            // At once: the server waits 5 s for a closing client to take its close frame.
            let (code, texts, _) = await slow.readUntilClose(limit: 20)
            #expect(code == 4008)
            #expect(texts < count)
            let seen = try await fast
            #expect(seen.offsets == Array(1...count))
            #expect(publishTime < .seconds(60))
            #expect(try await Self.slowClientsClosed(h) == slowBefore + 1)
        }
    }

    /// `parley_ws_slow_clients_closed_total` from `/metrics` (0 before the first one).
    static func slowClientsClosed(_ h: Harness) async throws -> Int {
        let metrics = try await h.request(.GET, "/metrics")
        let line = metrics.text.split(separator: "\n").first { $0.hasPrefix("parley_ws_slow_clients_closed_total ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    @Test func connectionCapAndAttemptRateLimit() async throws {
        let settings = try ServerFixture.settings {
            $0.maxConnectionsPerUser = 2
            $0.connectAttemptsPerUser = 5
        }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            let meeting = try await h.meeting("Cap", token: alice)
            let first = try await RawSocket.watching(meeting, token: alice, port: h.port)
            let second = try await RawSocket.watching(meeting, token: alice, port: h.port)
            try await Task.sleep(for: .milliseconds(200))
            let third = try RawSocket(port: h.port)
            third.upgrade("/ws/meeting/\(meeting)?token=\(alice)")
            #expect(await third.readHead().status == 429)
            var statuses: [Int] = []
            for _ in 0..<3 {
                let socket = try RawSocket(port: h.port)
                socket.upgrade("/ws/meeting/\(meeting)?token=\(alice)")
                statuses.append(await socket.readHead().status)
            }
            #expect(statuses.last == 429)
            // The first two stay open to the end (a socket closes when it is released).
            withExtendedLifetime([first, second]) {}
        }
    }
}

/// A value handed from one task to another, once.
final class Signal<Value: Sendable>: Sendable {
    private let continuation: AsyncStream<Value>.Continuation
    private let stream: AsyncStream<Value>

    init() { (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1)) }

    func complete(_ value: Value) { continuation.yield(value) }

    struct TimedOut: Error, CustomStringConvertible {
        let description: String
    }

    /// The value, waited for at most `limit` (what should complete it may have failed): past
    /// that an issue is recorded and `TimedOut` thrown, so a test fails instead of hanging.
    func value(within limit: Duration = .seconds(60)) async throws -> Value {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { [stream] in
                for await value in stream { return value }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            if let value = try await group.next() ?? nil { return value }
            try Task.checkCancellation()
            Issue.record("waited \(limit) for a signal that never came")
            throw TimedOut(description: "no signal within \(limit)")
        }
    }
}
