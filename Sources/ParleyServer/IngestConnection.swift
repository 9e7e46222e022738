import DequeModule
import Foundation
import Logging
import NIOCore
import NIOWebSocket
import ParleyEvents
import Synchronization

/// The last handler of an ingest socket (`/ws/meeting/{id}/ingest`): binary frames are raw PCM
/// (s16le, mono, 16 kHz) stored into the meeting's ``LiveRecording``, each answered with
/// `{"type":"ack","bytes":N}` (all bytes stored so far); text frames are JSON: `stop` ends the
/// recording, `ping` gets a `pong`, anything else an `error` message, and the connection stays.
final class IngestConnection: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let outlet: SocketOutlet
    let logger: Logger
    /// Set once admitted (the connection exists before its recording does).
    private let target = Mutex<LiveRecording?>(nil)

    /// Who records through it (their removal from the meeting closes it).
    let userID: String?

    init(outlet: SocketOutlet, userID: String? = nil, logger: Logger) {
        self.outlet = outlet
        self.userID = userID
        self.logger = logger
    }

    var recording: LiveRecording? {
        get { target.withLock { $0 } }
        set { target.withLock { $0 = newValue } }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        _ = outlet.becameReady(in: context, logger: logger)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        outlet.detach()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let recording else { return }
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            receive(samples: frame.unmaskedData, into: recording)
        case .text:
            recording.heard(from: self)
            receive(String(buffer: frame.unmaskedData), for: recording)
        case .ping:
            recording.heard(from: self)
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            outlet.clientClosed(frame)
        default:
            recording.heard(from: self)
        }
    }

    private func receive(samples: ByteBuffer, into recording: LiveRecording) {
        do {
            switch try recording.append(samples, from: self) {
            case .stored(let total):
                send(["type": "ack", "bytes": total])
            case .oddLength(let count):
                sendError(
                    "odd_length",
                    "binary frames carry whole 16-bit samples; \(count) bytes is not a whole number (nothing of it was stored)"
                )
            case .ended:
                sendError("recording_ended", "the recording has ended; nothing more is stored")
            case .tooLarge:
                sendError("too_large", "the recording reached the limit of \(recording.maxBytes) bytes; it ends here")
            case .replaced:
                outlet.close(code: .init(codeNumber: 4010), reason: "another connection continues the recording")
            }
        } catch let error as APIError {
            sendError(error.code, error.message)
            recording.end(.failed)
        } catch {
            sendError("storage", "cannot store the recording: \(error)")
            recording.end(.failed)
        }
    }

    private func receive(_ text: String, for recording: LiveRecording) {
        struct Incoming: Decodable { var type: String }
        guard let incoming = try? JSONDecoder().decode(Incoming.self, from: Data(text.utf8)) else {
            sendError("bad_message", "send JSON objects with a \"type\" (stop, ping), and the audio as binary frames")
            return
        }
        switch incoming.type {
        case "stop": recording.end(.stopped)
        case "ping": send(["type": "pong"])
        case "pong": break
        default: sendError("unknown_type", "unknown message type '\(incoming.type)'")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        outlet.answer(error, context: context, logger: logger)
    }

    // MARK: Messages (from any thread)

    /// A JSON message: written on the connection's event loop.
    func send(_ fields: [String: any Sendable]) {
        let message = ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: fields)) ?? Data("{}".utf8))
        let outlet = self.outlet
        outlet.eventLoop.execute { outlet.write([message], ping: false) }
    }

    func sendError(_ code: String, _ message: String) {
        let outlet = self.outlet
        let buffer = ClientError.message(code, message)
        outlet.eventLoop.execute { outlet.write([buffer], ping: false) }
    }

    /// Closes the socket without a close frame, as a network failure would.
    func drop() {
        outlet.channel.close(promise: nil)
    }

    /// Sends the close frame (after anything sent before it).
    func close(code: UInt16, reason: String) {
        let outlet = self.outlet
        outlet.eventLoop.execute { outlet.close(code: .init(codeNumber: Int(code)), reason: reason) }
    }
}
