public import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdCore
public import Logging
import Metrics
import NIOCore
public import ParleyHub
import ParleyJobs
public import ParleyPipeline
public import ParleyStore
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The whole server: store, hub, job runner, routes and WebSocket endpoint, as one
/// Hummingbird application plus the services around it.
public struct ParleyServer: Sendable {
    public let application: Application<RouterResponder<ParleyRequestContext>>
    public let store: any Store
    public let hub: Hub
    public let settings: ServerSettings
    let lifecycle: ServerLifecycle
    let meetings: MeetingService
    let queue: JobQueue?
    let tokens: TokenService
    let logger: Logger

    /// Opens the store in the data directory (creating it), builds the routes, and ends or
    /// resumes meetings a previous run left `processing`.
    public static func build(
        settings: ServerSettings, logger: Logger,
        makePipeline: @escaping @Sendable (DiarizationRequest) async throws -> MeetingPipeline,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> ParleyServer {
        // The certificate first: a wrong file stops the start before anything is opened.
        let tls = try settings.tlsCertificate.map { certificate in
            try ServerTLS.context(certificate: certificate, key: settings.tlsKey ?? "")
        }
        let registry = Self.bootstrapMetrics()
        let engine = try await Engine.open(settings: settings.engine, logger: logger, makePipeline: makePipeline)
        let (store, hub) = (engine.store, engine.hub)
        let meetings = MeetingService(engine: engine, settings: settings, metrics: ServerMetrics(), logger: logger)
        let tokens = await TokenService(
            secret: try TokenService.secret(settings: settings), store: store, settings: settings)
        let lifecycle = ServerLifecycle(hub: hub, logger: logger)
        let limits = ConnectionLimits(settings: settings)

        let router = Router(context: ParleyRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: MetricsMiddleware())
        let routeMethods = RouteMethods()
        router.add(middleware: ErrorEnvelopeMiddleware(routes: routeMethods))
        // The web app (Resources/web): plain files, shipped in the package, nothing from a CDN.
        // Inside the error envelope, so a path that is neither a route nor a file gets the JSON 404.
        if let web = Bundle.module.resourceURL?.appendingPathComponent("web").path {
            router.add(
                middleware: FileMiddleware(
                    web, cacheControl: .init([(.init(type: .any), [.noCache])]), searchForIndexHtml: true,
                    logger: logger))
        }
        router.get("/health") { _, _ -> Health in
            _ = try await store.latestOffset(meetingID: "")
            return Health(status: "ok")
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/openapi.json") { _, _ -> Response in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
                let data = try? Data(contentsOf: url)
            else { throw APIError.internalError() }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        // A plain request to a WebSocket endpoint gets the upgrade's first answers (a token, valid
        // parameters), then 426.
        for path in ["/ws/meeting/:id", "/ws/user"] {
            router.get(RouterPath(path)) { request, _ -> Response in
                _ = try await tokens.verifyAccess(try Self.token(of: request))
                _ = try WebSocketEndpoint.since(request.uri.queryParameters.get("since"))
                throw APIError(.upgradeRequired, "upgrade_required", "connect with a WebSocket client")
            }
        }
        router.get("/ws/meeting/:id/ingest") { request, _ -> Response in
            _ = try await tokens.verifyAccess(try Self.token(of: request))
            _ = try WebSocketEndpoint.resume(request.uri.queryParameters.get("resume"))
            throw APIError(.upgradeRequired, "upgrade_required", "connect with a WebSocket client")
        }
        AuthRoutes(store: store, tokens: tokens, hub: hub).add(to: router.group("/api/auth"))
        MeetingRoutes(store: store, meetings: meetings, editor: MeetingEditor(meetings: meetings, hub: hub)).add(
            to: router.group("/api/meetings").add(middleware: BearerAuthMiddleware(tokens: tokens)))
        WebhookRoutes(store: store, allowPrivate: settings.webhooksAllowPrivate).add(
            to: router.group("/api/webhooks").add(middleware: BearerAuthMiddleware(tokens: tokens)))
        let deliverer = WebhookDeliverer(store: store, settings: settings.webhooks, node: hub.node, logger: logger)
        engine.webhooks.onQueued { deliverer.poke() }
        ActionItemRoutes(store: store, indexer: engine.indexer).add(
            to: router.group("/api/action-items").add(middleware: BearerAuthMiddleware(tokens: tokens)))
        SearchRoutes(store: store, indexer: engine.indexer).add(
            to: router.group("/api/search").add(middleware: BearerAuthMiddleware(tokens: tokens)))
        VoiceRoutes(store: store, meetings: meetings).add(
            to: router.group("/api/voices").add(middleware: BearerAuthMiddleware(tokens: tokens)))
        if settings.development {
            DevelopmentRoutes(hub: hub, meetings: meetings).add(
                to: router.group("/api/dev").add(middleware: BearerAuthMiddleware(tokens: tokens)))
        }

        routeMethods.record(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })

        let webSocket = WebSocketEndpoint(
            hub: hub, tokens: tokens, meetings: meetings, limits: limits, settings: settings,
            lifecycle: lifecycle, deflate: WebSocketDeflate(settings: settings.compression))

        var application = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                ParleyChildChannel(
                    responder: responder, http1: .init(idleTimeout: nil), maxMessageBytes: settings.maxMessageBytes,
                    endpoint: webSocket, tls: tls)
            },
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Parley"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.port) },
            logger: logger)
        application.addServices(engine.services)
        application.addServices(
            engine.runner, PeriodicService.keepalive(hub: hub, interval: settings.keepaliveInterval),
            PeriodicService.recordingAccess(meetings: meetings, interval: settings.engine.sweepInterval), deliverer)

        let server = ParleyServer(
            application: application, store: store, hub: hub, settings: settings, lifecycle: lifecycle,
            meetings: meetings, queue: engine.queue, tokens: tokens, logger: logger)
        return server
    }

    /// Ends or resumes what a previous run left `processing`. Call once the job runner runs
    /// (`run()` does).
    public func recover() async throws {
        try await meetings.processor.recover()
        queue?.poke()
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: WebSockets closed with
    /// 1001, no new connections, running pipelines cancelled to resume on the next start.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: application), .init(service: RecoveryService(server: self)),
                    .init(service: lifecycle),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try await store.close()
    }

    /// An access token for a user, as login would give (for tests and the load benchmark).
    public func accessToken(userID: String, username: String, lifetime: TimeInterval) async throws -> String {
        try await tokens.accessToken(userID: userID, username: username, lifetime: lifetime)
    }

    /// swift-metrics is process-wide: bootstrapped once, with one Prometheus registry.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry { sharedRegistry }

    /// The access token of a plain request to a WebSocket endpoint: the bearer header or `token`.
    static func token(of request: Request) throws -> String {
        let bearer = request.headers[.authorization].flatMap(BearerAuthMiddleware.token)
        guard let token = bearer ?? request.uri.queryParameters.get("token"), !token.isEmpty else {
            throw APIError.unauthorized("missing access token")
        }
        return token
    }
}

private let sharedRegistry: PrometheusCollectorRegistry = {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return registry
}()

struct Health: ResponseEncodable {
    var status: String
}

/// Resumes interrupted meetings once the server runs, then waits for shutdown.
struct RecoveryService: Service {
    let server: ParleyServer

    func run() async throws {
        // Jobs submitted before the runner starts wait in its queue.
        do {
            try await server.recover()
        } catch {
            server.logger.error("recovering interrupted meetings failed", metadata: ["error": "\(error)"])
        }
        try? await gracefulShutdown()
    }
}
