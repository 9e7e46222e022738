import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL
import NIOWebSocket

/// Parley's HTTP/1 connections: Hummingbird's request handling, and WebSocket upgrades that,
/// once admitted, live on their event loop without a task each (`WebSocketConnection`): an idle
/// watcher costs its socket and a few objects, not a suspended task's frames.
struct ParleyChildChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case webSocket
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// The endpoint has answered with the refusal's status and closes the connection.
        case refused
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let http1: HTTP1Channel.Configuration
    let maxMessageBytes: Int
    let endpoint: WebSocketEndpoint
    /// HTTPS and WSS when set: TLS is the connection's first handler.
    let tls: NIOSSLContext?

    init(
        responder: @escaping HTTPChannelHandler.Responder, http1: HTTP1Channel.Configuration, maxMessageBytes: Int,
        endpoint: WebSocketEndpoint, tls: NIOSSLContext? = nil
    ) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.http1 = http1
        self.maxMessageBytes = maxMessageBytes
        self.endpoint = endpoint
        self.tls = tls
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
            try channel.pipeline.syncOperations.addHandler(CloseIfSilentAtShutdown())
            let attempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let admitted = NIOLoopBoundBox<WebSocketEndpoint.Upgrade?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxMessageBytes,
                shouldUpgrade: { [endpoint] channel, head in
                    attempted.value = true
                    let promise = channel.eventLoop.makePromise(of: WebSocketEndpoint.Upgrade?.self)
                    promise.completeWithTask {
                        await endpoint.upgrade(.init(head), channel: channel, logger: logger)
                    }
                    return promise.futureResult.map { upgrade in
                        admitted.value = upgrade
                        return upgrade?.headers
                    }
                },
                upgradePipelineHandler: { [maxMessageBytes, endpoint] channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let upgrade = admitted.value else { throw ChannelError.inappropriateOperationForState }
                        if let deflate = upgrade.deflate {
                            try channel.pipeline.syncOperations.addHandler(
                                DeflateInbound(deflate: deflate, maxMessageBytes: maxMessageBytes))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                maxAccumulatedFrameSize: maxMessageBytes))
                        switch upgrade.role {
                        case .watch(let subscriber, let outlet, let meeting, let canEdit):
                            try channel.pipeline.syncOperations.addHandler(
                                WebSocketConnection(
                                    subscriber: subscriber, outlet: outlet, meeting: meeting, canEdit: canEdit,
                                    budget: MessageBudget(
                                        rate: endpoint.settings.clientMessageRate,
                                        burst: endpoint.settings.clientMessageBurst),
                                    eventLoop: channel.eventLoop, logger: logger))
                        case .ingest(let connection):
                            try channel.pipeline.syncOperations.addHandler(connection)
                        }
                        return UpgradeResult.webSocket
                    }
                })
            let upgrades = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { [http1, secure = tls != nil] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if attempted.value { return UpgradeResult.refused }
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
                        try sync.addHandlers(http1.additionalChannelHandlers())
                        try sync.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger)
                        )
                        return UpgradeResult.notUpgraded(
                            try NIOAsyncChannel(
                                wrappingChannelSynchronously: channel,
                                configuration: .init(isOutboundHalfClosureEnabled: true)))
                    }
                })
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: upgrades)
            configuration.enablePipelining = false  // NIOAsyncChannel reads one request at a time
            configuration.enableErrorHandling = false  // Hummingbird answers HTTP errors
            configuration.enableResponseHeaderValidation = false  // HTTPTypes validates them
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: configuration)
            return Value(upgradeResult: result, channel: channel)
        }
    }

    /// HTTP requests run in this connection's task; an upgraded WebSocket needs none.
    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http1): await handleHTTP(asyncChannel: http1, logger: logger)
            case .webSocket, .refused: break
            }
        } catch {
            logger.debug("connection ended before its first request", metadata: ["error": "\(error)"])
            value.channel.close(promise: nil)
        }
    }

    /// NIO upgrades only a connection's first request: an upgrade on a reused connection is
    /// sent to the same address on a new one (307 and close), as Hummingbird does.
    static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder)
        -> HTTPChannelHandler.Responder
    {
        struct RedirectedUpgrade: Error {}
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                try await responder(request, writer, channel)
                return
            }
            var location = request.uri.path
            if let query = request.uri.query { location += "?\(query)" }
            try await writer.writeResponse(
                HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw RedirectedUpgrade()
        }
    }
}
