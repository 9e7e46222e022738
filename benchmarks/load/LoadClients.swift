// parley-load: the WebSocket load generator of the hub benchmark (benchmarks/hub.py).
// Real WebSocket clients on raw SwiftNIO (frames parsed on the event loops), many per process. Talks to
// Parley and to the FastAPI peer alike: both send the same JSON events whose transcript text
// starts with `t<publish time in ns>`.
//
//   parley-load fanout    --ws URL --publish URL [--token T] --subscribers N --events M [--size S] --pid PID
//   parley-load idle      --ws URL --connections N --hold SECONDS --pid PID
//   parley-load reconnect --ws URL --publish URL --clients N --events M
// Prints one JSON object with the results (`parley-load help` for every option).

import AsyncHTTPClient
import CompressNIO
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

func nowNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// The index of `needle` in the buffer's readable bytes, or nil.
func find(_ needle: [UInt8], in buffer: ByteBuffer) -> Int? {
    buffer.withUnsafeReadableBytes { haystack -> Int? in
        let count = needle.count
        guard haystack.count >= count, let first = needle.first else { return nil }
        var i = 0
        while i <= haystack.count - count {
            if haystack[i] == first {
                var j = 1
                while j < count && haystack[i + j] == needle[j] { j += 1 }
                if j == count { return i }
            }
            i += 1
        }
        return nil
    }
}

let offsetMarker = Array(#""offset":"#.utf8)
let textMarker = Array(#""text":"t"#.utf8)
let connectedMarker = Array(#""type":"connected""#.utf8)

/// Finds `"offset":N` and `"text":"tNS` in a frame without a JSON parser.
func scan(_ buffer: ByteBuffer) -> (offset: Int, published: Int64?)? {
    func number(after marker: [UInt8]) -> Int64? {
        guard let at = find(marker, in: buffer) else { return nil }
        var index = buffer.readerIndex + at + marker.count
        var value: Int64 = 0
        var digits = 0
        while let byte = buffer.getInteger(at: index, as: UInt8.self), byte >= 48, byte <= 57 {
            value = value * 10 + Int64(byte - 48)
            index += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }
    guard let offset = number(after: offsetMarker) else { return nil }
    return (Int(offset), number(after: textMarker))
}

/// Totals across all connections, readable from the main task while the event loops count.
final class Stats: Sendable {
    let received = Atomic<Int>(0)
    let connected = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let closed = Atomic<Int>(0)
    /// Bytes read from the sockets after the handshakes (frames as sent: compressed or not).
    let wireBytes = Atomic<Int>(0)
    /// The messages' bytes as the application reads them (inflated).
    let payloadBytes = Atomic<Int>(0)
    /// Connections whose server accepted permessage-deflate.
    let deflated = Atomic<Int>(0)
}

/// One WebSocket client on raw SwiftNIO: sends the upgrade, then parses frames straight from
/// the socket's buffers on its event loop (no tasks, no locks per message), answers pings, and
/// records each numbered event's offset and publish-to-receipt latency.
final class Client: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let path: String
    let host: String
    let stats: Stats
    let expect: Int
    let untilOffset: Int?
    let record: Bool
    /// Offer permessage-deflate (no context takeover either way).
    let deflate: Bool
    // Confined to the channel's event loop:
    var inflater: ZlibDecompressor?
    var pending = ByteBuffer()
    var upgraded = false
    var seen = 0
    var offsets: [Int] = []
    var latencies: [Int64] = []
    var done = false

    init(
        path: String, host: String, stats: Stats, expect: Int, untilOffset: Int?, record: Bool, deflate: Bool = false
    ) {
        self.path = path
        self.host = host
        self.stats = stats
        self.expect = expect
        self.untilOffset = untilOffset
        self.record = record
        self.deflate = deflate
    }

    func channelActive(context: ChannelHandlerContext) {
        let offer =
            deflate
            ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n"
            : ""
        let request =
            "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\(offer)\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        let size = incoming.readableBytes
        pending.writeBuffer(&incoming)
        if upgraded { stats.wireBytes.add(size, ordering: .relaxed) }
        if !upgraded {
            guard let end = find([13, 10, 13, 10], in: pending) else { return }
            let head = pending.readString(length: end + 4) ?? ""
            guard head.hasPrefix("HTTP/1.1 101") else {
                done = true
                context.close(promise: nil)
                return
            }
            upgraded = true
            stats.connected.add(1, ordering: .relaxed)
            stats.wireBytes.add(pending.readableBytes, ordering: .relaxed)  // frames read with the head
            if head.lowercased().contains("permessage-deflate") {
                stats.deflated.add(1, ordering: .relaxed)
                inflater = try? ZlibDecompressor(algorithm: .deflate)
            }
        }
        parseFrames(context: context)
        pending.discardReadBytes()
    }

    private func parseFrames(context: ChannelHandlerContext) {
        while pending.readableBytes >= 2 {
            let start = pending.readerIndex
            let b0 = pending.getInteger(at: start, as: UInt8.self)!
            let b1 = pending.getInteger(at: start + 1, as: UInt8.self)!
            var length = Int(b1 & 0x7f)
            var header = 2
            if length == 126 {
                guard pending.readableBytes >= 4 else { return }
                length = Int(pending.getInteger(at: start + 2, as: UInt16.self)!)
                header = 4
            } else if length == 127 {
                guard pending.readableBytes >= 10 else { return }
                length = Int(pending.getInteger(at: start + 2, as: UInt64.self)!)
                header = 10
            }
            guard pending.readableBytes >= header + length else { return }
            pending.moveReaderIndex(forwardBy: header)
            var payload = pending.readSlice(length: length)!
            // A compressed message (RSV1): inflated with the 4 bytes RFC 7692 strips put back.
            if b0 & 0x40 != 0, let inflater {
                payload.writeBytes([0, 0, 0xFF, 0xFF])
                guard let inflated = try? payload.decompressStream(with: inflater) else {
                    context.close(promise: nil)
                    return
                }
                try? inflater.reset()
                payload = inflated
            }
            if b0 & 0x0f == 0x1 { stats.payloadBytes.add(payload.readableBytes, ordering: .relaxed) }
            switch b0 & 0x0f {
            case 0x1: text(payload, context: context)
            case 0x9: send(opcode: 0xA, payload: payload, context: context)  // pong
            case 0x8: if !done { finish(context: context) }
            default: break
            }
        }
    }

    private func text(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard !done, let (offset, published) = scan(payload) else { return }
        if find(connectedMarker, in: payload) != nil { return }
        if let published { latencies.append(nowNanoseconds() - published) }
        if record { offsets.append(offset) }
        seen += 1
        stats.received.add(1, ordering: .relaxed)
        if seen >= expect || (untilOffset.map { offset >= $0 } ?? false) { finish(context: context) }
    }

    private func finish(context: ChannelHandlerContext) {
        done = true
        stats.closed.add(1, ordering: .relaxed)
        send(opcode: 0x8, payload: ByteBuffer(bytes: [0x03, 0xE8]), context: context)
        context.close(promise: nil)
    }

    /// A masked frame (clients must mask), for payloads under 126 bytes.
    private func send(opcode: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) {
        var frame = ByteBuffer()
        frame.writeInteger(0x80 | opcode)
        frame.writeInteger(0x80 | UInt8(min(payload.readableBytes, 125)))
        let mask: [UInt8] = [1, 2, 3, 4]
        frame.writeBytes(mask)
        for (i, byte) in payload.readableBytesView.prefix(125).enumerated() { frame.writeInteger(byte ^ mask[i % 4]) }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !upgraded { stats.failed.add(1, ordering: .relaxed) }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

/// ws://HOST:PORT/PATH?QUERY
struct Target {
    let host: String
    let port: Int
    let path: String

    init(_ url: String) {
        let rest = url.dropFirst("ws://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        host = String(authority.split(separator: ":").first ?? "127.0.0.1")
        port = Int(authority.split(separator: ":").last ?? "80") ?? 80
        path = String(rest[slash...])
    }
}

/// Opens clients with at most 200 handshakes in flight (so 10,000 do not overflow the server's
/// accept backlog) and returns once all are up or failed.
func connect(_ urls: [String], stats: Stats, expect: Int, untilOffset: Int?, record: Bool, deflate: Bool = false)
    async -> [(
        Client, any Channel
    )]
{
    var clients: [(Client, any Channel)] = []
    for (index, url) in urls.enumerated() {
        while index - stats.connected.load(ordering: .relaxed) - stats.failed.load(ordering: .relaxed) >= 200 {
            try? await Task.sleep(for: .milliseconds(1))
        }
        let target = Target(url)
        let client = Client(
            path: target.path, host: "\(target.host):\(target.port)", stats: stats, expect: expect,
            untilOffset: untilOffset, record: record, deflate: deflate)
        do {
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(client) }
                }
                .connect(host: target.host, port: target.port).get()
            clients.append((client, channel))
        } catch {
            stats.failed.add(1, ordering: .relaxed)
        }
    }
    let started = Date()
    while stats.connected.load(ordering: .relaxed) + stats.failed.load(ordering: .relaxed) < urls.count,
        Date().timeIntervalSince(started) < 60
    {
        try? await Task.sleep(for: .milliseconds(10))
    }
    return clients
}

/// Reads a value from each client on its event loop.
func collect<T: Sendable>(_ clients: [(Client, any Channel)], _ read: @escaping @Sendable (Client) -> T) async -> [T] {
    var values: [T] = []
    for (client, channel) in clients {
        if let value = try? await channel.eventLoop.submit({ read(client) }).get() { values.append(value) }
    }
    return values
}

func post(_ url: String, body: String, token: String?) async throws {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.body = .bytes(ByteBuffer(string: body))
    request.headers.add(name: "Content-Type", value: "application/json")
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
    let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
    guard response.status.code == 200 else {
        throw NSError(domain: "publish", code: 1, userInfo: [NSLocalizedDescriptionKey: text])
    }
}

func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

func cpuSeconds(pid: Int) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: ")").last!.split(separator: " ")
    // After the ")": state is field 0, utime is 11, stime is 12 (fields 14 and 15 of stat).
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (Double(fields[11])! + Double(fields[12])!) / ticks
}

func rssMegabytes(pid: Int) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ")[1])! / 1024
    }
    return 0
}

func percentile(_ sorted: [Int64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
}
