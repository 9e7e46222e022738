import CompressNIO
import DequeModule
import Foundation
import NIOCore
import NIOWebSocket
import Synchronization

/// permessage-deflate (RFC 7692) for the watchers' sockets, negotiated when the client offers
/// it and `server.websocket_compression` is on. Always without context takeover, both ways:
/// every message is compressed on its own, so a message's compressed bytes are the same for
/// every subscriber — compressed once per event loop, not once per connection — and a
/// connection keeps no compression state at all (the compressor, the decompressor and a small
/// cache of compressed messages belong to the event loop).
final class WebSocketDeflate: Sendable {
    /// The server's side of the negotiation.
    struct Settings: Sendable, Equatable {
        var enabled = true
        /// The LZ77 window the server compresses with (9-15): smaller uses less memory per event
        /// loop, compresses long messages a little worse.
        var windowBits = 15
        /// Messages shorter than this go uncompressed (keepalives, pongs, small events).
        var minimumBytes = 256
    }

    let settings: Settings
    private let loops = Mutex<[ObjectIdentifier: NIOLoopBound<LoopDeflate>]>([:])

    init(settings: Settings) {
        self.settings = settings
    }

    /// The `Sec-WebSocket-Extensions` answer to a client's header, or nil when the client
    /// offers no permessage-deflate this server can accept (or compression is off).
    func accept(_ offered: String?) -> String? {
        guard settings.enabled, let offered else { return nil }
        for offer in offered.split(separator: ",") {
            let parameters = offer.split(separator: ";", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard parameters.first?.lowercased() == "permessage-deflate" else { continue }
            let serverBits = settings.windowBits
            var acceptable = true
            var seen = Set<String>()
            for parameter in parameters.dropFirst() {
                let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
                let name = parts[0].lowercased()
                // A parameter twice, or one this server does not know, rules the offer out.
                guard seen.insert(name).inserted else {
                    acceptable = false
                    break
                }
                switch (name, parts.count == 2 ? Int(parts[1]) : nil, parts.count) {
                case ("server_no_context_takeover", _, 1), ("client_no_context_takeover", _, 1),
                    ("client_max_window_bits", _, 1):
                    break
                case ("client_max_window_bits", .some(let bits), 2) where (8...15).contains(bits):
                    break
                case ("server_max_window_bits", .some(let bits), 2) where (8...15).contains(bits):
                    // Each event loop compresses once for all its clients, with the server's
                    // window: an offer that wants a smaller one is declined (RFC 7692 lets a
                    // server decline; browsers do not ask).
                    guard bits >= serverBits else {
                        acceptable = false
                        break
                    }
                default:
                    acceptable = false
                }
                if !acceptable { break }
            }
            guard acceptable else { continue }
            var answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            if serverBits < 15 { answer += "; server_max_window_bits=\(serverBits)" }
            return answer
        }
        return nil
    }

    /// The event loop's compressor and cache, made on first use. Call on `loop`.
    func onLoop(_ loop: any EventLoop) -> LoopDeflate {
        loops.withLock { loops in
            if let existing = loops[ObjectIdentifier(loop)] { return existing.value }
            let made = LoopDeflate(settings: settings)
            loops[ObjectIdentifier(loop)] = NIOLoopBound(made, eventLoop: loop)
            return made
        }
    }
}

/// One event loop's deflate state, used only on that loop.
final class LoopDeflate {
    struct Failure: Error {}

    let settings: WebSocketDeflate.Settings
    private let compressor: ZlibCompressor?
    private let decompressor: ZlibDecompressor?

    /// Messages compressed lately, by the address and length of their bytes. An entry holds the
    /// message's buffer, so its memory cannot be reused for another message while the entry
    /// lasts; nil: the message does not get smaller, send it as it is.
    private struct Key: Hashable {
        var address: UInt
        var length: Int
    }
    private struct Entry {
        var message: ByteBuffer
        var deflated: ByteBuffer?
    }
    private var cache: [Key: Entry] = [:]
    private var order = Deque<Key>()
    private var cachedBytes = 0
    private static let cacheLimit = 4 << 20

    init(settings: WebSocketDeflate.Settings) {
        self.settings = settings
        compressor = try? ZlibCompressor(
            algorithm: .deflate, configuration: ZlibConfiguration(windowSize: Int32(settings.windowBits)))
        decompressor = try? ZlibDecompressor(algorithm: .deflate, windowSize: 15)
    }

    /// The message's payload compressed for a frame with RSV1 set (RFC 7692 7.2.1: deflated with
    /// a sync flush, its final 00 00 FF FF taken off), or nil to send it uncompressed: it is
    /// short, or would not get smaller.
    func deflated(_ message: ByteBuffer) -> ByteBuffer? {
        guard message.readableBytes >= settings.minimumBytes, let compressor else { return nil }
        let key = Key(
            address: message.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) },
            length: message.readableBytes)
        if let entry = cache[key] { return entry.deflated }
        var input = message
        var output: ByteBuffer?
        do {
            var compressed = try input.compressStream(with: compressor, flush: .sync, allocator: ByteBufferAllocator())
            try compressor.reset()
            if compressed.readableBytes >= 4,
                compressed.getBytes(at: compressed.writerIndex - 4, length: 4) == [0, 0, 0xFF, 0xFF]
            {
                compressed.moveWriterIndex(to: compressed.writerIndex - 4)
            }
            if compressed.readableBytes < message.readableBytes { output = compressed }
        } catch {
            try? compressor.reset()
        }
        remember(key, Entry(message: message, deflated: output))
        return output
    }

    private func remember(_ key: Key, _ entry: Entry) {
        cache[key] = entry
        order.append(key)
        cachedBytes += entry.message.readableBytes + (entry.deflated?.readableBytes ?? 0)
        while cachedBytes > Self.cacheLimit || order.count > 1024, let oldest = order.popFirst() {
            if let gone = cache.removeValue(forKey: oldest) {
                cachedBytes -= gone.message.readableBytes + (gone.deflated?.readableBytes ?? 0)
            }
        }
    }

    /// A compressed message's payload inflated, at most `maxSize` bytes (a message that
    /// inflates past it is refused: a small frame must not become a large allocation).
    func inflate(_ payload: ByteBuffer, maxSize: Int) throws -> ByteBuffer {
        guard let decompressor else { throw Failure() }
        var input = payload
        input.writeBytes([0, 0, 0xFF, 0xFF])
        defer { try? decompressor.reset() }
        return try input.decompressStream(with: decompressor, maxSize: maxSize, allocator: ByteBufferAllocator())
    }
}

/// Inflates the client's compressed messages (RSV1 on the first frame) before the frame
/// aggregator, which would drop the bit; fragments of a compressed message are gathered here.
/// A message that is not valid deflate, or inflates past the size limit, closes the connection
/// (1007 / 1009) through the connection's error handling.
final class DeflateInbound: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    enum Error: Swift.Error {
        case badCompressedData
        case tooLarge
    }

    let deflate: WebSocketDeflate
    let maxMessageBytes: Int
    /// The fragments of a compressed message so far, and its opcode.
    private var gathering: (opcode: WebSocketOpcode, data: ByteBuffer)?

    init(deflate: WebSocketDeflate, maxMessageBytes: Int) {
        self.deflate = deflate
        self.maxMessageBytes = maxMessageBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text where frame.rsv1, .binary where frame.rsv1:
            if frame.fin {
                deliver(opcode: frame.opcode, payload: frame.unmaskedData, context: context)
            } else {
                gathering = (frame.opcode, frame.unmaskedData)
            }
        case .continuation where gathering != nil:
            var payload = frame.unmaskedData
            gathering!.data.writeBuffer(&payload)
            if gathering!.data.readableBytes > maxMessageBytes {
                gathering = nil
                context.fireErrorCaught(Error.tooLarge)
                return
            }
            if frame.fin, let (opcode, whole) = gathering {
                gathering = nil
                deliver(opcode: opcode, payload: whole, context: context)
            }
        default:
            context.fireChannelRead(data)
        }
    }

    private func deliver(opcode: WebSocketOpcode, payload: ByteBuffer, context: ChannelHandlerContext) {
        do {
            let inflated = try deflate.onLoop(context.eventLoop).inflate(payload, maxSize: maxMessageBytes)
            context.fireChannelRead(wrapInboundOut(WebSocketFrame(fin: true, opcode: opcode, data: inflated)))
        } catch let error as CompressNIOError where error == .bufferOverflow {
            context.fireErrorCaught(Error.tooLarge)
        } catch {
            context.fireErrorCaught(Error.badCompressedData)
        }
    }
}
