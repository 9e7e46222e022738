import DequeModule
import NIOCore
import NIOWebSocket
import ParleyHub

/// A WebSocket connection as the hub's outlet: frames written straight onto the channel from
/// its event loop, a batch per flush, the same buffer for every subscriber. No task per
/// connection waits for messages.
final class SocketOutlet: Outlet {
    let channel: any Channel
    /// How long a closed subscriber's connection gets to take its close frame before the
    /// socket is closed regardless (a client that does not read never takes it).
    let closeTimeout: TimeAmount

    init(channel: any Channel, closeTimeout: TimeAmount) {
        self.channel = channel
        self.closeTimeout = closeTimeout
    }

    var eventLoop: any EventLoop { channel.eventLoop }

    var isWritable: Bool { channel.isWritable }

    func write(_ messages: Deque<ByteBuffer>, ping: Bool) {
        for message in messages {
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: message), promise: nil)
        }
        if ping { channel.write(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer()), promise: nil) }
        channel.flush()
    }

    /// Stops reading, which ends the connection's message loop; the endpoint then sends the
    /// close frame with the reason's code (through Hummingbird's handler, which keeps the close
    /// handshake's state).
    func close(_ reason: CloseReason) {
        guard reason != .clientClosed else { return }
        channel.close(mode: .input, promise: nil)
        channel.eventLoop.scheduleTask(in: closeTimeout) { [channel] in channel.close(promise: nil) }
    }
}

/// First in the connection's pipeline: any bytes from the client count as a sign of life (the
/// keepalive closes silent ones), and a socket that becomes writable again resumes delivery.
final class ConnectionWatch: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    let subscriber: Subscriber

    init(subscriber: Subscriber) {
        self.subscriber = subscriber
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        subscriber.heard()
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { subscriber.resume() }
        context.fireChannelWritabilityChanged()
    }
}
