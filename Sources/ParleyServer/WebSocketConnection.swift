import DequeModule
import Foundation
import Logging
import NIOCore
import NIOWebSocket
import ParleyEvents
import ParleyHub
import ParleyPipeline

/// The last handler of an upgraded WebSocket connection. A connection has no task of its own:
/// the hub writes to it through its `SocketOutlet`, and this handler answers what the client
/// sends — `{"type":"ping"}` with `pong`, ping frames with pong frames, a close with a close —
/// within the client's `MessageBudget`, and counts any frame as a sign of life for the keepalive.
final class WebSocketConnection: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let subscriber: Subscriber
    let outlet: SocketOutlet
    /// The meeting watched; nil on the user's own socket (`/ws/user`).
    let meeting: MeetingChannel?
    let logger: Logger
    /// The viewer may edit the meeting, and so say what they are editing.
    let canEdit: Bool
    /// What the client may still send (created and used on the connection's event loop).
    private let budget: NIOLoopBoundBox<MessageBudget>
    private let cursors: NIOLoopBoundBox<CursorPacer>

    init(
        subscriber: Subscriber, outlet: SocketOutlet, meeting: MeetingChannel?, canEdit: Bool, budget: MessageBudget,
        eventLoop: any EventLoop, logger: Logger
    ) {
        self.subscriber = subscriber
        self.outlet = outlet
        self.meeting = meeting
        self.canEdit = canEdit
        self.budget = .makeBoxSendingValue(budget, eventLoop: eventLoop)
        cursors = .makeBoxSendingValue(CursorPacer(), eventLoop: eventLoop)
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if outlet.becameReady(in: context, logger: logger) { subscriber.resume() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        outlet.detach()
        cursors.value.stop()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        subscriber.heard()
        let frame = unwrapInboundIn(data)
        if frame.opcode == .text || frame.opcode == .binary || frame.opcode == .ping {
            switch budget.value.take() {
            case .allowed:
                break
            case .refused(let first):
                if first {
                    let rate = budget.value.rate
                    let perSecond = rate == rate.rounded() ? "\(Int(rate))" : "\(rate)"
                    let limit = "at most \(perSecond) a second (bursts of \(budget.value.burst))"
                    // Straight to the socket (not behind queued events), so it is out before a
                    // close that may follow in this same read.
                    outlet.write(
                        [ClientError.message("rate_limited", "too many messages: \(limit); this one was dropped")],
                        ping: false)
                }
                return
            case .exhausted:
                logger.info("websocket client closed for flooding", metadata: ["user": "\(subscriber.viewer.username)"])
                outlet.close(code: .policyViolation, reason: "too many messages")
                return
            }
        }
        switch frame.opcode {
        case .text:
            receive(String(buffer: frame.unmaskedData), context: context)
        case .binary:
            subscriber.send(ClientError.message("bad_message", "send JSON text messages"))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            outlet.clientClosed(frame)
        default:
            break
        }
    }

    /// The server stops: 1001, clients reconnect with `since` (`ServerLifecycle` has closed the
    /// sockets of a whole server already; this one may have opened meanwhile).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { subscriber.close(.shutdown) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { subscriber.resume() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        outlet.answer(error, context: context, logger: logger)
    }

    /// Client messages: `{"type":"ping"}` gets a `pong`; `editing` (editors only) and `cursor`
    /// go to everyone else watching (`Collaboration`); anything else gets an `error` message
    /// (not numbered) and the connection stays open.
    func receive(_ text: String, context: ChannelHandlerContext) {
        guard let incoming = try? JSONDecoder().decode(Collaboration.Incoming.self, from: Data(text.utf8)) else {
            subscriber.send(ClientError.message("bad_message", "send JSON objects with a \"type\""))
            return
        }
        do {
            switch incoming.type {
            case "ping": subscriber.send(Keepalive.pong())
            case "pong": break
            case "editing":
                guard let meeting else {
                    throw Collaboration.Rejection.message(
                        code: "unknown_type", text: "'editing' is for a meeting's socket, not the user's")
                }
                guard canEdit else {
                    throw Collaboration.Rejection.message(
                        code: "forbidden", text: "only the meeting's owner and members allowed to edit may edit")
                }
                let message = try Collaboration.editing(incoming, from: subscriber, in: meeting.meetingID)
                meeting.broadcastEphemeral(message, from: subscriber)
            case "cursor":
                guard let watched = meeting else {
                    throw Collaboration.Rejection.message(
                        code: "unknown_type", text: "'cursor' is for a meeting's socket, not the user's")
                }
                let message = try Collaboration.cursor(incoming, from: subscriber, in: watched.meetingID)
                let (meeting, subscriber, cursors) = (watched, subscriber, cursors)
                let send = { (message: ByteBuffer) in meeting.broadcastEphemeral(message, from: subscriber) }
                cursors.value.offer(message, send: send) { delay in
                    context.eventLoop.scheduleTask(in: delay) { cursors.value.flush(send: send) }
                }
            default:
                subscriber.send(ClientError.message("unknown_type", "unknown message type '\(incoming.type)'"))
            }
        } catch let Collaboration.Rejection.message(code, text) {
            subscriber.send(ClientError.message(code, text))
        } catch {
            subscriber.send(ClientError.message("bad_message", "\(error)"))
        }
    }
}

/// `{"type":"error","data":{"code","message"}}` for a bad client message; not numbered.
struct ClientError: Encodable {
    let type = "error"
    let timestamp: String
    let data: [String: String]

    static func message(_ code: String, _ message: String) -> ByteBuffer {
        let value = ClientError(
            timestamp: MeetingEvent.formatTimestamp(Date()), data: ["code": code, "message": message])
        return ByteBuffer(bytes: (try? JSONEncoder().encode(value)) ?? Data("{}".utf8))
    }
}
