import DequeModule
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import ParleyHub

/// A WebSocket connection as the hub's outlet: a batch of frames written straight to the
/// socket from its event loop, one write and one flush. Nothing is written before the upgrade
/// is done, and nothing after the close frame.
final class SocketOutlet: Outlet {
    let channel: any Channel
    /// How long the client gets to answer our close frame before the socket is closed
    /// regardless (a client that does not read never answers).
    let closeTimeout: TimeAmount

    private struct State {
        /// Writes here go straight to the socket, past the frame encoder: set when the
        /// upgrade is done, and nothing is written before.
        var raw: ChannelHandlerContext?
        var closeSent = false
        /// A close asked for before the upgrade was done; sent once it is.
        var closeWaiting: (WebSocketErrorCode, String, Bool)?
        /// This event loop's compressor, once the first message needed it.
        var loopDeflate: LoopDeflate?
    }

    private let state: NIOLoopBoundBox<State>

    /// permessage-deflate, when the client and the server agreed on it.
    let deflate: WebSocketDeflate?

    init(channel: any Channel, closeTimeout: TimeAmount, deflate: WebSocketDeflate? = nil) {
        self.channel = channel
        self.closeTimeout = closeTimeout
        self.deflate = deflate
        state = .makeBoxSendingValue(State(), eventLoop: channel.eventLoop)
    }

    var eventLoop: any EventLoop { channel.eventLoop }

    var isWritable: Bool { state.value.raw != nil && !state.value.closeSent && channel.isWritable }

    /// The batch as one buffer of text frames, one write, one flush. The JSON was serialized
    /// once for everyone; here it is only copied behind each frame's header, which costs less
    /// than passing every frame through the pipeline and the encoder.
    func write(_ messages: Deque<ByteBuffer>, ping: Bool) {
        guard let raw = state.value.raw else { return }
        var size = ping ? 2 : 0
        for message in messages { size += message.readableBytes + 10 }
        var frames = channel.allocator.buffer(capacity: size)
        // Compressed once per event loop for all its subscribers (no context takeover).
        if let deflate, state.value.loopDeflate == nil { state.value.loopDeflate = deflate.onLoop(channel.eventLoop) }
        let loopDeflate = state.value.loopDeflate
        var compressed = 0
        for message in messages {
            if let deflated = loopDeflate?.deflated(message) {
                Self.writeHeader(opcode: 0x1, length: deflated.readableBytes, compressed: true, into: &frames)
                frames.writeImmutableBuffer(deflated)
                compressed += 1
                continue
            }
            Self.writeHeader(opcode: 0x1, length: message.readableBytes, into: &frames)
            frames.writeImmutableBuffer(message)
        }
        if ping { Self.writeHeader(opcode: 0x9, length: 0, into: &frames) }
        SocketMetrics.bytesSent.increment(by: frames.readableBytes)
        if compressed > 0 { SocketMetrics.compressedMessages.increment(by: compressed) }
        raw.writeAndFlush(NIOAny(frames), promise: nil)
    }

    /// A final, unmasked frame's header (RFC 6455 5.2); RSV1 set for a compressed message
    /// (RFC 7692).
    static func writeHeader(opcode: UInt8, length: Int, compressed: Bool = false, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | (compressed ? 0x40 : 0) | opcode)
        switch length {
        case ..<126:
            buffer.writeInteger(UInt8(length))
        case ...0xFFFF:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }

    func close(_ reason: CloseReason) {
        // The client went: nothing to say to it.
        guard reason != .clientClosed else { return }
        close(
            code: WebSocketErrorCode(codeNumber: Int(reason.code)), reason: reason.message,
            waitForAnswer: reason != .shutdown)
    }

    /// Sends the close frame (once) and closes the socket when the client answers, or after
    /// `closeTimeout`; at shutdown, as soon as the frame is out.
    func close(code: WebSocketErrorCode, reason: String, waitForAnswer: Bool = true) {
        guard state.value.raw != nil else {
            state.value.closeWaiting = (code, reason, waitForAnswer)
            return
        }
        guard !state.value.closeSent else { return }
        // Then half-close: the client reads the close frame and the end of the stream, and its
        // answer (a close frame, or closing its side) ends the connection.
        sendClose(code, reason: reason, thenClose: waitForAnswer ? .output : .all)
        channel.eventLoop.scheduleTask(in: closeTimeout) { [channel] in channel.close(promise: nil) }
    }

    /// Writes the (one) close frame this side sends, then closes the socket as `mode` says.
    private func sendClose(_ code: WebSocketErrorCode, reason: String = "", thenClose mode: CloseMode) {
        state.value.closeSent = true
        var data = channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).whenComplete {
            [channel] _ in channel.close(mode: mode, promise: nil)
        }
    }

    /// The upgrade is done and the connection's handlers are in place: writes may start,
    /// through the frame encoder's context (`raw`) so they pass it by.
    func becameReady(raw: ChannelHandlerContext) {
        state.value.raw = raw
        if let (code, reason, wait) = state.value.closeWaiting {
            close(code: code, reason: reason, waitForAnswer: wait)
        }
    }

    /// `becameReady(raw:)` from the last handler once it is added: false (and the connection
    /// closed) when the pipeline has no frame encoder.
    func becameReady(in context: ChannelHandlerContext, logger: Logger) -> Bool {
        do {
            becameReady(raw: try context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self))
            return true
        } catch {
            logger.error("websocket pipeline without a frame encoder", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return false
        }
    }

    /// Answers the frame errors the decoder's own handler does not: a message assembled from
    /// fragments over the size limit (1009), or fragments out of order (1002); anything else
    /// closes the connection.
    func answer(_ error: any Error, context: ChannelHandlerContext, logger: Logger) {
        switch error {
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge, DeflateInbound.Error.tooLarge:
            close(code: .messageTooLarge, reason: "message too large")
        case DeflateInbound.Error.badCompressedData:
            close(code: .dataInconsistentWithMessage, reason: "bad compressed data")
        case is NIOWebSocketFrameAggregator.Error:
            close(code: .protocolError, reason: "bad fragments")
        case is NIOWebSocketError:
            break  // WebSocketProtocolErrorHandler has sent the close frame and closes.
        default:
            logger.debug("websocket connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// The connection's handlers are gone (it closed): nothing more is written.
    func detach() {
        state.value.raw = nil
    }

    /// The client sent a close frame: the answer to ours ends the connection; otherwise answer
    /// with its code, then close.
    func clientClosed(_ frame: WebSocketFrame) {
        if state.value.closeSent {
            channel.close(promise: nil)
            return
        }
        var received = frame.unmaskedData
        sendClose(received.readWebSocketErrorCode() ?? .normalClosure, thenClose: .all)
    }
}
