import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ParleyHub
import ParleyJobs
import ParleyTestSupport
import Synchronization
import Testing
import WSCore

@testable import ParleyServer

/// What a careful look at the server found: limits answered as 4xx, security headers on every
/// response, and a data folder only its user can read.
@Suite struct HardeningTests {
    static func header(_ reply: Harness.Reply, _ name: String) -> String? {
        reply.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    @Test func aJSONBodyOverTheLimitIs413AndTheServerGoesOn() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            // 20 MB of JSON: a title far past the 1 MB a JSON body may have.
            let huge =
                Data(#"{"title":""#.utf8) + Data(repeating: UInt8(ascii: "a"), count: 20 << 20) + Data(#""}"#.utf8)
            let refused = try await h.request(
                .POST, "/api/meetings", token: token, body: huge, contentType: "application/json")
            #expect(refused.status == 413, "\(refused.text.prefix(300))")
            #expect(refused.errorCode == "too_large")
            #expect(refused.text.contains("larger than"), "\(refused.text.prefix(300))")
            // Nothing was made, and the next request is served.
            let listed = try await h.request(.GET, "/api/meetings", token: token)
            #expect(listed.status == 200 && (listed.json["meetings"] as? [Any])?.isEmpty == true)
            #expect(try await h.request(.POST, "/api/meetings", json: ["title": "Small"], token: token).status == 201)
        }
    }

    @Test func everyResponseCarriesTheSecurityHeaders() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            for reply in [
                try await h.request(.GET, "/"),  // the web app's page
                try await h.request(.GET, "/js/app.js"),
                try await h.request(.GET, "/api/meetings", token: token),
                try await h.request(.GET, "/api/meetings"),  // 401
                try await h.request(.GET, "/no/such/thing"),  // 404
            ] {
                let policy = Self.header(reply, "Content-Security-Policy") ?? ""
                #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(policy)")
                #expect(policy.contains("frame-ancestors 'none'"))
                #expect(Self.header(reply, "X-Content-Type-Options") == "nosniff")
                #expect(Self.header(reply, "Referrer-Policy") == "no-referrer")
            }
            // The page has no inline script for the policy to refuse.
            let page = try await h.request(.GET, "/").text
            #expect(page.contains("<script type=\"module\" src="))
            #expect(!page.contains("<script>") && !page.contains("style=\""))
        }
    }

    /// The owner removes a member: the member's socket on the meeting closes with 4003 at once,
    /// the meeting is theirs no more, and only the owner may remove anyone.
    @Test func aRemovedMemberLosesTheMeetingAtOnce() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let (_, carol) = try await h.user("carol")
            let meeting = try await h.meeting("Shared", token: alice)
            for name in ["bob", "carol"] {
                let added = try await h.request(
                    .POST, "/api/meetings/\(meeting)/members", json: ["username": name, "can_edit": true],
                    token: alice)
                #expect(added.status == 201)
            }
            // Bob also records the meeting (his ingest socket).
            let recording = try RawSocket(port: h.port)
            recording.upgrade("/ws/meeting/\(meeting)/ingest?token=\(bob)")
            #expect(await recording.readUpgradeHead().status == 101)
            let connected = Signal<Void>()
            // Watches until the server closes the socket.
            async let watched = h.watch(meeting, token: bob, timeout: .seconds(60)) { _ in
                false
            } onMessage: {
                if $0.type == "connected" { connected.complete(()) }
            }
            try await connected.value()
            #expect(try await h.request(.DELETE, "/api/meetings/\(meeting)/members/bob", token: carol).status == 403)
            let removed = try await h.request(.DELETE, "/api/meetings/\(meeting)/members/bob", token: alice)
            #expect(removed.status == 200, "\(removed.text)")
            #expect(removed.json["members"] as? [String] == ["carol"])
            let closed = try await watched
            #expect(closed.close?.closeCode == .unknown(4003), "\(String(describing: closed.close))")
            #expect(await recording.readUntilClose(limit: 10).code == 4003)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)", token: bob).status == 403)
            #expect(try await h.request(.GET, "/api/meetings/\(meeting)", token: carol).status == 200)
            let again = try await h.request(.DELETE, "/api/meetings/\(meeting)/members/bob", token: alice)
            #expect(again.status == 404 && again.errorCode == "not_found")
        }
    }

    /// Edit rights taken away end the member's recording (4003) within a sweep.
    @Test func aRecordingEndsWhenItsRecorderMayNoLongerEdit() async throws {
        let settings = try ServerFixture.settings { $0.engine.sweepInterval = 0.5 }
        try await ServerFixture.withServer(settings) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let meeting = try await h.meeting("Recorded by bob", token: alice)
            let added = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "bob", "can_edit": true], token: alice)
            #expect(added.status == 201)
            let recording = try RawSocket(port: h.port)
            recording.upgrade("/ws/meeting/\(meeting)/ingest?token=\(bob)")
            #expect(await recording.readUpgradeHead().status == 101)
            let demoted = try await h.request(
                .POST, "/api/meetings/\(meeting)/members", json: ["username": "bob", "can_edit": false], token: alice)
            #expect(demoted.json["editors"] as? [String] == [])
            let (code, _, seconds) = await recording.readUntilClose(limit: 10)
            #expect(code == 4003 && seconds < 5, "\(String(describing: code)) after \(seconds) s")
        }
    }

    /// Logging out closes the sockets that session opened (4001) at once, and only those: the
    /// same user's other session keeps watching; the logged-out refresh token is dead.
    @Test func loggingOutClosesThatSessionsSockets() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, first) = try await h.user("alice")
            let meeting = try await h.meeting("Watched twice", token: first)
            let login = try await h.request(
                .POST, "/api/auth/login", json: ["username": "alice", "password": "correct horse"])
            let second = try #require(login.json["access_token"] as? String)
            let refresh = try #require(login.json["refresh_token"] as? String)
            let connected = Signal<Void>()
            let otherConnected = Signal<Void>()
            // The second session's socket: closed by the logout.
            async let loggedOut = h.watch(meeting, token: second, timeout: .seconds(60)) { _ in
                false
            } onMessage: {
                if $0.type == "connected" { connected.complete(()) }
            }
            // The first session's socket: still open after it, until an event comes.
            async let stays = h.watch(meeting, token: first, timeout: .seconds(60)) {
                $0.contains { $0.offset != nil && $0.type != "connected" }
            } onMessage: {
                if $0.type == "connected" { otherConnected.complete(()) }
            }
            try await connected.value()
            try await otherConnected.value()
            #expect(try await h.request(.POST, "/api/auth/logout", json: ["refresh_token": refresh]).status == 204)
            let closed = try await loggedOut
            #expect(closed.close?.closeCode == .unknown(4001), "\(String(describing: closed.close))")
            #expect(try await h.publish(meeting, count: 1, token: first).status == 200)
            let other = try await stays
            #expect(other.events.count == 1 && other.close?.closeCode != .unknown(4001))
            let refreshed = try await h.request(.POST, "/api/auth/refresh", json: ["refresh_token": refresh])
            #expect(refreshed.status == 401)
        }
    }

    @Test func aClientsMessagesAreBudgetedByATokenBucket() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var budget = MessageBudget(rate: 10, burst: 3, now: start)
        // The burst, then refusals (the first says so), then closed after another burst.
        #expect((0..<3).map { _ in budget.take(now: start) } == [.allowed, .allowed, .allowed])
        #expect(budget.take(now: start) == .refused(first: true))
        #expect(budget.take(now: start) == .refused(first: false))
        // A tenth of a second earns one message back, and resets the refusals.
        #expect(budget.take(now: start + .milliseconds(100)) == .allowed)
        #expect(budget.take(now: start + .milliseconds(100)) == .refused(first: true))
        #expect(budget.take(now: start + .milliseconds(100)) == .refused(first: false))
        #expect(budget.take(now: start + .milliseconds(100)) == .refused(first: false))
        #expect(budget.take(now: start + .milliseconds(100)) == .exhausted)
        // Once exhausted (the connection is being closed), nothing more is allowed.
        #expect(budget.take(now: start + .seconds(60)) == .refused(first: false))
        // A long pause fills a bucket to its burst, no more.
        var other = MessageBudget(rate: 10, burst: 3, now: start)
        #expect(other.take(now: start) == .allowed)
        let later = start + .seconds(60)
        #expect((0..<4).map { _ in other.take(now: later) } == [.allowed, .allowed, .allowed, .refused(first: true)])
    }

    @Test func aFloodingClientIsWarnedThenClosedAndAPoliteOneIsNot() async throws {
        let settings = try ServerFixture.settings {
            $0.clientMessageRate = 10
            $0.clientMessageBurst = 10
        }
        try await ServerFixture.withServer(settings) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Flooded", token: token)
            let flood = Collected()
            let close = try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(h.port)/ws/meeting/\(meeting)?token=\(token)", logger: Logger(label: "flood")
            ) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                func keep(_ message: WebSocketMessage) -> Wire? {
                    guard case .text(let text) = message else { return nil }
                    let wire = Wire(text)
                    flood.messages.withLock { $0.append(wire) }
                    return wire
                }
                // The burst is answered in full. (Pongs queue behind events while a flood's close
                // goes out at once and drops what is queued, so the burst is answered before the
                // flood begins: otherwise how many pongs get out first depends on the machine's load.)
                for _ in 0..<10 { try await outbound.write(.text(#"{"type":"ping"}"#)) }
                var pongs = 0
                while pongs < 10, let message = try await messages.next() {
                    if keep(message)?.type == "pong" { pongs += 1 }
                }
                // (The server may close before the last is written: a failed write is expected.)
                for _ in 0..<200 { try? await outbound.write(.text(#"{"type":"ping"}"#)) }
                while let message = try await messages.next() { _ = keep(message) }
            }
            #expect(close?.closeCode == .policyViolation, "\(String(describing: close))")
            let seen = flood.messages.withLock { $0 }
            let pongs = seen.filter { $0.type == "pong" }.count
            let errors = seen.filter { $0.type == "error" }
            #expect(pongs >= 10 && pongs < 60, "\(pongs) pongs")
            // Warned before the close. (Once more if the server read the flood so slowly that a
            // message was allowed again in between, which resets the warning.)
            #expect(!errors.isEmpty && errors.allSatisfy { $0.data["code"] as? String == "rate_limited" })
            #expect((errors.first?.data["message"] as? String)?.contains("at most 10 a second") == true)

            // Within the budget (a message every 150 ms), every message is answered.
            let polite = Collected()
            let politeClose = try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(h.port)/ws/meeting/\(meeting)?token=\(token)", logger: Logger(label: "polite")
            ) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for _ in 0..<25 {
                            try await outbound.write(.text(#"{"type":"ping"}"#))
                            try await Task.sleep(for: .milliseconds(150))
                        }
                    }
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message else { continue }
                        let all = polite.messages.withLock {
                            $0.append(Wire(text)); return $0
                        }
                        if all.filter({ $0.type == "pong" }).count == 25 || all.contains(where: { $0.type == "error" })
                        {
                            break
                        }
                    }
                    try await group.waitForAll()
                    try await outbound.close(.normalClosure, reason: "done")
                }
            }
            let answered = polite.messages.withLock { $0 }
            #expect(answered.filter { $0.type == "pong" }.count == 25)
            #expect(!answered.contains { $0.type == "error" })
            #expect(politeClose?.closeCode == .normalClosure)
        }
    }

    /// Stopping does not wait for clients: a connection that never sent a request (a
    /// browser's preconnection) is closed, and a watcher's socket gets 1001 (going away).
    @Test func silentConnectionsAndOpenSocketsDoNotHoldTheStop() async throws {
        let held = Mutex<(silent: RawSocket?, watcher: RawSocket?)>((nil, nil))
        let stopped = Completion<Void>()
        Task {
            do {
                try await ServerFixture.withServer(try ServerFixture.settings()) { h in
                    let (_, alice) = try await h.user("alice")
                    let meeting = try await h.meeting("Left open", token: alice)
                    let watcher = try await RawSocket.watching(meeting, token: alice, port: h.port)
                    let silent = try RawSocket(port: h.port)
                    held.withLock { $0 = (silent, watcher) }
                }
            } catch {
                Issue.record(error)
            }
            stopped.complete(())
        }
        // (Before, the silent connection held the stop until the client gave it up.)
        #expect(await stopped.value(within: .seconds(60)) != nil, "the stop waited for a silent connection")
        let (silent, watcher) = held.withLock { $0 }
        let watched = try #require(await watcher?.readUntilClose(limit: 10))
        #expect(watched.code == 1001)
        let quiet = try #require(await silent?.readUntilClose(limit: 10))
        #expect(quiet.code == nil && quiet.seconds < 5, "the silent connection was not closed")
    }

    @Test func theDataFolderAndItsFilesAreForTheServersUserOnly() async throws {
        func mode(_ path: String) throws -> Int {
            try #require(
                (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
        }
        let fresh = try ServerFixture.scratch("private") + "/data"
        try await ServerFixture.withServer(try ServerFixture.settings(dataDirectory: fresh)) { h in
            _ = try await h.user("alice")
        }
        #expect(try mode(fresh) == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: fresh)
        #expect(files.contains("parley.sqlite") && files.contains("jwt-secret"), "\(files)")
        for file in files {
            let bits = try mode("\(fresh)/\(file)")
            #expect(bits & 0o077 == 0, "\(file) is \(String(bits, radix: 8))")
        }
        // A folder made readable by others before is tightened when the server starts.
        let open = try ServerFixture.scratch("open")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: open)
        try await ServerFixture.withServer(try ServerFixture.settings(dataDirectory: open)) { _ in }
        #expect(try mode(open) == 0o700)
    }
}
