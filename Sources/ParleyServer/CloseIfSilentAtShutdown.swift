import NIOCore

/// Closes a connection that has sent nothing yet when the server stops. Until its first
/// request, a connection's HTTP handler is NIO's upgrade handler, which ignores the server's
/// quiesce event: an idle preconnection (browsers open them; HTTP clients keep spare ones)
/// would hold the graceful shutdown open until the client gave it up. Removed at the first
/// bytes, after which the HTTP handlers (or the WebSocket's) take the event.
final class CloseIfSilentAtShutdown: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
