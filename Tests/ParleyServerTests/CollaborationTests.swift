import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import Testing

@testable import ParleyServer

/// Who is editing and where others are: `editing` and `cursor` messages passed between the
/// people watching a meeting, checked, stamped with who sent them, and cursors coalesced.
@Suite struct CollaborationTests {
    /// A watcher that sends `messages` (one every `every`) once connected and collects what it
    /// receives until `until`.
    static func session(
        _ h: Harness, meeting: String, token: String, send messages: [String] = [], every: Duration = .zero,
        connected: Signal<Void>? = nil, linger: Duration = .zero, until: @escaping @Sendable ([Wire]) -> Bool
    ) async throws -> [Wire] {
        let seen = Collected()
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(h.port)/ws/meeting/\(meeting)?token=\(token)", logger: Logger(label: "collab")
        ) { inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: .seconds(20))
                    Issue.record("a session timed out")
                    try await outbound.close(.normalClosure, reason: "timeout")
                }
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let all = seen.messages.withLock {
                        $0.append(Wire(text))
                        return $0
                    }
                    if all.count == 1 {
                        connected?.complete(())
                        group.addTask {
                            for message in messages {
                                try await outbound.write(.text(message))
                                if every > .zero { try await Task.sleep(for: every) }
                            }
                        }
                    }
                    if until(all) { break }
                }
                // Connected a while longer (what the server still has to send goes out).
                if linger > .zero { try await Task.sleep(for: linger) }
                group.cancelAll()
                try await outbound.close(.normalClosure, reason: "done")
            }
        }
        return seen.messages.withLock { $0 }
    }

    @Test func editorsSayWhatTheyEditAndEveryoneSeesWhereOthersAre() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, alice) = try await h.user("alice")
            let (_, bob) = try await h.user("bob")
            let (_, carol) = try await h.user("carol")
            let meeting = try await h.meeting("Together", token: alice)
            for (name, edit) in [("bob", true), ("carol", false)] {
                let added = try await h.request(
                    .POST, "/api/meetings/\(meeting)/members", json: ["username": name, "can_edit": edit], token: alice)
                #expect(added.status == 201)
            }
            // Carol watches (and may not edit); Bob edits and moves his cursor twenty times in a row.
            let carolIn = Signal<Void>()
            async let carolSaw = Self.session(h, meeting: meeting, token: carol, connected: carolIn) { seen in
                seen.contains { $0.type == "cursor" && $0.data["time"] as? Double == 20 }
                    && seen.contains { $0.type == "editing" && $0.data["item"] is NSNull }
                    && seen.contains { $0.type == "presence" && $0.data["left"] != nil }
            }
            try await carolIn.value()
            try await Task.sleep(for: .milliseconds(200))
            let bobSent =
                [
                    #"{"type":"editing","data":{"item":"segment:3"}}"#, #"{"type":"editing","data":{"item":"x"}}"#,
                    #"{"type":"editing","data":{"item":5}}"#, #"{"type":"ping","data":"anything"}"#,
                ]
                + (1...20).map { #"{"type":"cursor","data":{"time":\#($0),"segment":\#($0 / 5)}}"# }
                + [#"{"type":"cursor","data":{"time":-1}}"#, #"{"type":"editing","data":{"item":null}}"#]
            // (Bob stays a second, so his last cursor, kept back by the pacing, goes out.)
            let bobSaw = try await Self.session(h, meeting: meeting, token: bob, send: bobSent, linger: .seconds(1)) {
                seen in seen.filter { $0.type == "error" }.count == 3
            }
            let carolSeen = try await carolSaw

            // Bob's own messages do not come back to him; his mistakes are answered to him alone.
            #expect(!bobSaw.contains { $0.type == "editing" || $0.type == "cursor" })

            let errors = bobSaw.map(\.text).filter { $0.contains(#""type":"error""#) }
            #expect(errors.count == 3, "\(bobSaw.map(\.text))")
            #expect(errors.first?.contains("segment:12") == true && errors.last?.contains("seconds") == true)
            #expect(bobSaw.contains { $0.type == "pong" })
            // Carol sees what Bob edits, stamped with his name, then that he stopped.
            let editing = carolSeen.filter { $0.type == "editing" }
            #expect(editing.count == 2)
            #expect(
                editing.first?.data["user"] as? String == "bob" && editing.first?.data["item"] as? String == "segment:3"
            )
            #expect(editing.first?.fields["meeting_id"] as? String == meeting && editing.first?.offset == nil)
            // Twenty cursors in a burst reach her coalesced: the first, and the newest.
            let cursors = carolSeen.filter { $0.type == "cursor" }
            #expect((2...10).contains(cursors.count), "\(cursors.map(\.text))")
            #expect(cursors.last?.data["time"] as? Double == 20 && cursors.last?.data["segment"] as? Int == 4)
            #expect(cursors.allSatisfy { $0.data["user"] as? String == "bob" })
            // Nothing of Bob's comes after he left.
            let left = try #require(carolSeen.firstIndex { $0.type == "presence" && $0.data["left"] != nil })
            #expect(!carolSeen[left...].contains { $0.type == "cursor" || $0.type == "editing" })
            #expect(!carolSeen.contains { $0.type == "error" })

            // Someone who may only watch may not say they edit.
            let refused = try await Self.session(
                h, meeting: meeting, token: carol, send: [#"{"type":"editing","data":{"item":"segment:3"}}"#]
            ) { seen in seen.contains { $0.type == "error" } }
            #expect(refused.first { $0.type == "error" }?.data["code"] as? String == "forbidden")
        }
    }

    @Test func cursorsArePacedAndTheNewestWins() {
        var pacer = CursorPacer()
        let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
        var sent: [String] = []
        var scheduled: [TimeAmount] = []
        func offer(_ text: String, at offset: TimeAmount) {
            pacer.offer(ByteBuffer(string: text), now: start + offset, send: { sent.append(String(buffer: $0)) }) {
                scheduled.append($0)
            }
        }
        offer("a", at: .zero)
        offer("b", at: .milliseconds(50))
        offer("c", at: .milliseconds(100))
        #expect(sent == ["a"] && scheduled == [.milliseconds(200)])
        pacer.flush(now: start + .milliseconds(250)) { sent.append(String(buffer: $0)) }
        #expect(sent == ["a", "c"])
        // Nothing waiting: a flush sends nothing; after the interval, a cursor goes at once.
        pacer.flush(now: start + .milliseconds(600)) { sent.append(String(buffer: $0)) }
        offer("d", at: .milliseconds(700))
        #expect(sent == ["a", "c", "d"] && scheduled.count == 1)
        // Once the connection closed, a kept cursor is dropped and new ones are not sent.
        offer("e", at: .milliseconds(750))
        pacer.stop()
        pacer.flush(now: start + .seconds(1)) { sent.append(String(buffer: $0)) }
        offer("f", at: .seconds(2))
        #expect(sent == ["a", "c", "d"])
        #expect(Collaboration.isItem("segment:12") && Collaboration.isItem("action_item:3"))
        #expect(Collaboration.isItem("speaker:S2") && !Collaboration.isItem("segment:") && !Collaboration.isItem("x:1"))
        #expect(!Collaboration.isItem("segment:<script>") && !Collaboration.isItem("segment:é"))
    }
}
