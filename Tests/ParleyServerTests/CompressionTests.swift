import CompressNIO
import Foundation
import HummingbirdWSClient
import HummingbirdWSCompression
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import Testing

@testable import ParleyServer

/// permessage-deflate (RFC 7692) on the watchers' sockets: negotiated when offered, frames
/// compressed on the wire, and clients that offer it and clients that do not both reading every
/// message right.
@Suite struct CompressionTests {
    /// Hummingbird's WebSocket client (with or without its deflate extension) watching a
    /// meeting; sends `send` once connected, collects until `until`.
    static func watch(
        _ h: Harness, meeting: String, token: String, deflate: Bool, send: [String] = [],
        connected: Signal<Void>? = nil, until: @escaping @Sendable ([Wire]) -> Bool
    ) async throws -> (messages: [Wire], close: WebSocketCloseFrame?) {
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: 1 << 20, extensions: deflate ? [.perMessageDeflate(maxDecompressedFrameSize: 1 << 20)] : [])
        let seen = Collected()
        let close = try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(h.port)/ws/meeting/\(meeting)?token=\(token)", configuration: configuration,
            logger: Logger(label: "deflate-test")
        ) { inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: .seconds(60))
                    Issue.record("a watcher timed out")
                    try await outbound.close(.normalClosure, reason: "timeout")
                }
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let all = seen.messages.withLock {
                        $0.append(Wire(text))
                        return $0
                    }
                    if all.count == 1 {
                        for text in send { try await outbound.write(.text(text)) }
                        connected?.complete(())
                    }
                    if until(all) { break }
                }
                group.cancelAll()
                try await outbound.close(.normalClosure, reason: "done")
            }
        }
        return (seen.messages.withLock { $0 }, close)
    }

    /// `text` deflated as a client sends it (sync flush, the final 00 00 FF FF taken off).
    static func deflate(_ text: String) throws -> [UInt8] {
        let compressor = try ZlibCompressor(algorithm: .deflate)
        var input = ByteBuffer(string: text)
        var output = try input.compressStream(with: compressor, flush: .sync)
        output.moveWriterIndex(to: output.writerIndex - 4)
        return Array(output.readableBytesView)
    }

    @Test func offersAreReadCarefully() {
        let server = WebSocketDeflate(settings: .init())
        let plain = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        #expect(server.accept(nil) == nil)
        #expect(server.accept("permessage-deflate") == plain)
        #expect(server.accept("PerMessage-Deflate ; client_max_window_bits") == plain)
        #expect(server.accept("permessage-deflate; client_max_window_bits=15; client_no_context_takeover") == plain)
        #expect(server.accept("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=15") == plain)
        // A smaller server window than the server compresses with is declined, the next offer taken.
        #expect(server.accept(#"permessage-deflate; server_max_window_bits="11""#) == nil)
        #expect(server.accept("permessage-deflate; server_max_window_bits=12, permessage-deflate") == plain)
        let small = WebSocketDeflate(settings: .init(windowBits: 10))
        #expect(
            small.accept("permessage-deflate; server_max_window_bits=12") == plain + "; server_max_window_bits=10")
        // The first acceptable offer wins; malformed ones are passed over, never a crash.
        #expect(server.accept("permessage-deflate; bogus, permessage-deflate") == plain)
        for malformed in [
            ";", "=", ",", " , ", "permessage-deflate;", "permessage-deflate; =", "permessage-deflate; ==",
            "permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=x", "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "deflate-stream",
        ] {
            #expect(server.accept(malformed) == nil, "\(malformed)")
        }
        #expect(WebSocketDeflate(settings: .init(enabled: false)).accept("permessage-deflate") == nil)
        #expect(
            WebSocketDeflate(settings: .init(windowBits: 10)).accept("permessage-deflate")
                == plain + "; server_max_window_bits=10")
    }

    @Test func clientsWithAndWithoutDeflateReadEveryMessage() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Compressed", token: token)
            // A client message long enough for the client to compress it: inflated, answered.
            let ping = #"{"type":"ping","padding":""# + String(repeating: "pad ", count: 200) + #""}"#
            let done: @Sendable ([Wire]) -> Bool = { messages in
                messages.filter { $0.type == "dev" || $0.offset != nil && $0.type != "connected" }.count == 40
                    && messages.contains { $0.type == "pong" }
            }
            // Both subscribed (they have their `connected`) before anything is published.
            let (compressedIn, plainIn) = (Signal<Void>(), Signal<Void>())
            async let compressed = Self.watch(
                h, meeting: meeting, token: token, deflate: true, send: [ping], connected: compressedIn, until: done)
            async let plain = Self.watch(
                h, meeting: meeting, token: token, deflate: false, send: [ping], connected: plainIn, until: done)
            try await compressedIn.value()
            try await plainIn.value()
            // Events of several sizes: below the threshold (sent plain), and well above it.
            for size in [50, 2000, 20000, 100] {
                #expect(try await h.publish(meeting, count: 10, size: size, token: token).status == 200)
            }
            let (withDeflate, plainClient) = try await (compressed, plain)
            for (name, result) in [("deflate", withDeflate), ("plain", plainClient)] {
                let events = result.messages.filter { $0.offset != nil && $0.type != "connected" }
                #expect(events.map(\.offset) == Array(1...40), "\(name)")
                #expect(result.messages.contains { $0.type == "pong" }, "\(name): the ping was not answered")
                #expect(result.close?.closeCode == .normalClosure, "\(name)")
            }
            // Both read exactly the same events.
            let numbered: @Sendable (Wire) -> Bool = { $0.offset != nil && $0.type != "connected" }
            #expect(
                withDeflate.messages.filter(numbered).map(\.text) == plainClient.messages.filter(numbered).map(\.text))
        }
    }

    @Test func theServerAnswersTheOfferAndCompressesOnTheWire() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("On the wire", token: token)
            let socket = try RawSocket(port: h.port)
            socket.upgrade(
                "/ws/meeting/\(meeting)?token=\(token)",
                headers: ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
            let head = await socket.readUpgradeHead()
            #expect(head.status == 101)
            #expect(
                head.head.lowercased().contains(
                    "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
                ), "\(head.head)")
            #expect(try await h.publish(meeting, count: 1, size: 4000, token: token).status == 200)
            // `connected` and `presence`, then the event.
            let frames = await socket.readFrames(3)
            try #require(frames.count == 3)
            // The short messages go plain. The event is compressed: RSV1, far smaller, and it
            // inflates to the JSON the event is.
            #expect(
                frames[0].first == 0x81 && Wire(String(decoding: frames[0].payload, as: UTF8.self)).type == "connected")
            #expect(frames[2].first == 0xC1, "first byte \(frames[2].first)")
            #expect(frames[2].payload.count < 1000, "\(frames[2].payload.count) bytes")
            var payload = ByteBuffer(bytes: frames[2].payload + [0, 0, 0xFF, 0xFF])
            let json = String(buffer: try payload.decompress(with: .deflate))
            #expect(Wire(json).offset == 1 && json.count > 4000)

            // A compressed client message in two fragments (RSV1 on the first only), as a
            // browser's sync-flushed deflate: inflated and answered.
            let ping = try Self.deflate(#"{"type":"ping","padding":""# + String(repeating: "x", count: 500) + #""}"#)
            let half = ping.count / 2
            socket.sendFrame(first: 0x41, payload: Array(ping[..<half]))
            socket.sendFrame(first: 0x80, payload: Array(ping[half...]))
            let pong = await socket.readFrames(1)
            #expect(pong.first.map { Wire(String(decoding: $0.payload, as: UTF8.self)).type } == "pong")
            // Bytes that are not deflate: closed with 1007.
            socket.sendFrame(first: 0xC1, payload: [0xFF, 0xFE, 0xFD, 0x00, 0x13, 0x37])
            #expect(await socket.readUntilClose(limit: 10).code == 1007)
            // A small frame that would inflate past the message limit (64 KiB): closed with 1009.
            let bomb = try RawSocket(port: h.port)
            bomb.upgrade(
                "/ws/meeting/\(meeting)?token=\(token)", headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
            #expect(await bomb.readUpgradeHead().status == 101)
            let zeros = try Self.deflate(
                #"{"type":"ping","padding":""# + String(repeating: "0", count: 1 << 20) + #""}"#)
            #expect(zeros.count < 4096)
            bomb.sendFrame(first: 0xC1, payload: zeros)
            #expect(await bomb.readUntilClose(limit: 10).code == 1009)

            // Offers it cannot take are not answered: unknown parameters, a window too small.
            for offer in [
                "permessage-deflate; no_such_thing", "permessage-deflate; server_max_window_bits=8", "x-webkit",
            ] {
                let other = try RawSocket(port: h.port)
                other.upgrade("/ws/meeting/\(meeting)?token=\(token)", headers: ["Sec-WebSocket-Extensions: \(offer)"])
                let answer = await other.readUpgradeHead()
                #expect(
                    answer.status == 101 && !answer.head.lowercased().contains("sec-websocket-extensions"), "\(offer)")
            }
            // A smaller server window than the server's is declined: no compression, still upgraded.
            let small = try RawSocket(port: h.port)
            small.upgrade(
                "/ws/meeting/\(meeting)?token=\(token)",
                headers: ["Sec-WebSocket-Extensions: foo, permessage-deflate; server_max_window_bits=10"])
            let declined = await small.readUpgradeHead()
            #expect(declined.status == 101 && !declined.head.lowercased().contains("sec-websocket-extensions"))
        }
    }

    @Test func compressionOffIsNeverNegotiated() async throws {
        let settings = try ServerFixture.settings { $0.compressWebSockets = false }
        try await ServerFixture.withServer(settings) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Plain", token: token)
            let socket = try RawSocket(port: h.port)
            socket.upgrade(
                "/ws/meeting/\(meeting)?token=\(token)", headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
            let head = await socket.readUpgradeHead()
            #expect(head.status == 101 && !head.head.lowercased().contains("sec-websocket-extensions"))
            #expect(try await h.publish(meeting, count: 1, size: 4000, token: token).status == 200)
            let frames = await socket.readFrames(3)
            #expect(frames.count == 3 && frames.allSatisfy { $0.first == 0x81 } && frames[2].payload.count > 4000)
        }
    }
}
