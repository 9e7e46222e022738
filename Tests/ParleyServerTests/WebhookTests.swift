import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyStore
import ParleyTestSupport
import Synchronization
import Testing

@testable import ParleyServer

/// Webhooks on both databases, against a real HTTP receiver (Hummingbird) that checks the
/// signature, goes down and comes back: each delivery arrives once it can, with the same
/// delivery id on every attempt, and the log shows the attempts; a delivery queued before a
/// restart is sent by the next start; private addresses are refused unless allowed.
@Suite struct WebhookTests {
    enum Database: String, CaseIterable, Sendable { case sqlite, postgres }

    /// What the receiver got, and how it answers.
    final class Receiver: Sendable {
        struct Received: Sendable {
            let event: String
            let delivery: String
            let signature: String
            let body: [UInt8]
            let status: Int
        }
        let received = Mutex<[Received]>([])
        /// Answers 503 while down.
        let down = Mutex(true)

        func application() -> some ApplicationProtocol {
            let router = Router()
            router.post("/hook") { request, _ -> HTTPResponse.Status in
                let body = try await request.body.collect(upTo: 1 << 20)
                let status: HTTPResponse.Status = self.down.withLock { $0 } ? .serviceUnavailable : .ok
                self.received.withLock {
                    $0.append(
                        Received(
                            event: request.headers[HTTPField.Name("X-Parley-Event")!] ?? "",
                            delivery: request.headers[HTTPField.Name("X-Parley-Delivery")!] ?? "",
                            signature: request.headers[HTTPField.Name("X-Parley-Signature")!] ?? "",
                            body: Array(buffer: body), status: Int(status.code)))
                }
                return status
            }
            return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        }

        var delivered: [Received] { received.withLock { $0.filter { $0.status == 200 } } }
    }

    static func settings(_ url: String?, data: String? = nil) throws -> ServerSettings {
        try ServerFixture.settings(dataDirectory: data) {
            $0.engine.database = url
            $0.webhooksAllowPrivate = true
            $0.webhookRetryBase = 0.2
        }
    }

    /// Publishes a meeting's completion and an action item list through the server's hub.
    static func finish(_ meeting: String, on h: Harness) async throws {
        let record = try #require(try await h.server.store.meeting(id: meeting))
        try await h.server.hub.withChannel(meetingID: meeting, epoch: record.epoch) { channel in
            _ = try await channel.publish(
                .actionItems(.init(items: [ActionItemRecord(id: 1, owner: "Ana", task: "Ship it", due: nil, time: 3)])))
            _ = try await channel.publish(.status(.init(stage: .completed, state: .completed)))
        }
    }

    @Test(arguments: Database.allCases) func deliveriesAreSignedRetriedAndArriveOnce(on database: Database)
        async throws
    {
        let url = database == .postgres ? try await TestPostgres.freshDatabase() : nil
        let receiver = Receiver()
        try await receiver.application().test(.live) { client in
            let hook = "http://127.0.0.1:\(client.port!)/hook"
            try await ServerFixture.withServer(try Self.settings(url)) { h in
                let (_, alice) = try await h.user("alice")
                let (_, bob) = try await h.user("bob")
                // Bad webhooks are refused with words.
                for (body, code) in [
                    (
                        ["url": "ftp://example.com/x", "secret": "s3cret-s3cret", "events": ["meeting.completed"]],
                        "invalid_url"
                    ),
                    (["url": hook, "secret": "short", "events": ["meeting.completed"]], "invalid_secret"),
                    (["url": hook, "secret": "s3cret-s3cret", "events": ["meeting.started"]], "invalid_events"),
                ] as [([String: any Sendable], String)] {
                    let refused = try await h.request(.POST, "/api/webhooks", json: body, token: alice)
                    #expect(refused.status == 400 && refused.errorCode == code, "\(refused.text)")
                }
                let created = try await h.request(
                    .POST, "/api/webhooks",
                    json: [
                        "url": hook, "secret": "s3cret-s3cret",
                        "events": ["meeting.completed", "action_items.updated"],
                    ],
                    token: alice)
                #expect(created.status == 201, "\(created.text)")
                let id = try #require(created.json["id"] as? String)
                let listed = try await h.request(.GET, "/api/webhooks", token: alice)
                #expect(!listed.text.contains("s3cret"), "the secret is never sent back")
                #expect((listed.json["webhooks"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
                #expect(try await h.request(.GET, "/api/webhooks/\(id)/deliveries", token: bob).status == 404)

                // The receiver is down: attempts fail and are retried with the same delivery id.
                let meeting = try await h.meeting("Weekly", token: alice)
                try await Self.finish(meeting, on: h)
                try await Self.until { receiver.received.withLock { $0.count } >= 4 }
                receiver.down.withLock { $0 = false }
                try await Self.until { receiver.delivered.count == 2 }
                try await Task.sleep(for: .seconds(1))  // nothing more comes
                let delivered = receiver.delivered
                #expect(
                    delivered.count == 2
                        && Set(delivered.map(\.event)) == ["meeting.completed", "action_items.updated"])
                for got in receiver.received.withLock({ $0 }) {
                    #expect(delivered.contains { $0.delivery == got.delivery }, "an attempt of an unknown delivery")
                    let mac = HMAC<SHA256>.authenticationCode(
                        for: got.body, using: SymmetricKey(data: Array("s3cret-s3cret".utf8)))
                    #expect(got.signature == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
                }
                let completed = try #require(delivered.first { $0.event == "meeting.completed" })
                let body = try #require(try JSONSerialization.jsonObject(with: Data(completed.body)) as? [String: Any])
                #expect((body["meeting"] as? [String: Any])?["id"] as? String == meeting)
                // The log: delivered after failed attempts with their status codes.
                let log = try await h.request(.GET, "/api/webhooks/\(id)/deliveries", token: alice).json
                let entries = try #require(log["deliveries"] as? [[String: Any]])
                #expect(entries.count == 2)
                #expect(
                    entries.allSatisfy { $0["state"] as? String == "delivered" && $0["status_code"] as? Int == 200 })
                #expect(entries.allSatisfy { ($0["attempts"] as? Int ?? 0) >= 2 }, "\(entries)")
                // Deleted: nothing more is sent.
                #expect(try await h.request(.DELETE, "/api/webhooks/\(id)", token: bob).status == 404)
                #expect(try await h.request(.DELETE, "/api/webhooks/\(id)", token: alice).status == 204)
                try await Self.finish(try await h.meeting("Another", token: alice), on: h)
                try await Task.sleep(for: .seconds(1))
                #expect(receiver.delivered.count == 2)
            }
        }
    }

    @Test(arguments: Database.allCases) func aDeliveryQueuedBeforeARestartIsSentAfterIt(on database: Database)
        async throws
    {
        let url = database == .postgres ? try await TestPostgres.freshDatabase() : nil
        let data = try ServerFixture.scratch("webhook-restart")
        let receiver = Receiver()
        try await receiver.application().test(.live) { client in
            let hook = "http://127.0.0.1:\(client.port!)/hook"
            try await ServerFixture.withServer(try Self.settings(url, data: data)) { h in
                let (_, alice) = try await h.user("alice")
                let created = try await h.request(
                    .POST, "/api/webhooks",
                    json: ["url": hook, "secret": "s3cret-s3cret", "events": ["meeting.completed"]],
                    token: alice)
                #expect(created.status == 201)
                try await Self.finish(try await h.meeting("Weekly", token: alice), on: h)
                try await Self.until { !receiver.received.withLock { $0.isEmpty } }
            }
            receiver.down.withLock { $0 = false }
            try await ServerFixture.withServer(try Self.settings(url, data: data)) { _ in
                try await Self.until { receiver.delivered.count == 1 }
            }
            #expect(receiver.delivered.count == 1)
            #expect(Set(receiver.received.withLock { $0.map(\.delivery) }).count == 1)
        }
    }

    @Test func privateAddressesAreRefusedUnlessAllowed() throws {
        for address in [
            "http://127.0.0.1/x", "http://10.1.2.3/x", "http://172.16.0.1/x", "http://192.168.1.1/x",
            "http://169.254.169.254/latest", "http://[::1]/x", "http://[fd00::1]/x", "http://0.0.0.0/x",
            "http://100.64.0.1/x", "http://[::ffff:127.0.0.1]/x",
        ] {
            #expect(throws: APIError.self, "\(address)") { try WebhookAddress.check(address, allowPrivate: false) }
            #expect(throws: Never.self) { try WebhookAddress.check(address, allowPrivate: true) }
        }
        #expect(throws: Never.self) {
            try WebhookAddress.check("https://hooks.example.com/parley", allowPrivate: false)
        }
        #expect(throws: Never.self) { try WebhookAddress.check("http://93.184.216.34/x", allowPrivate: false) }
        #expect(throws: APIError.self) { try WebhookAddress.check("file:///etc/passwd", allowPrivate: true) }
        #expect(WebhookAddress.resolve("localhost").allSatisfy { !WebhookAddress.isPublic($0) })
    }

    static func until(_ condition: @escaping () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            try #require(ContinuousClock.now < deadline, "waited 30 s")
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
