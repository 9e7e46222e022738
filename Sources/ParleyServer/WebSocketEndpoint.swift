import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ParleyHub
import ParleyPipeline
import ParleyStore

/// `GET /ws/meeting/{id}?token=<jwt>[&since=<offset>][&epoch=<epoch>]` (or the token as a
/// `Sec-WebSocket-Protocol` value next to `bearer`). Checks run before the upgrade, and a
/// refusal is an HTTP status with the JSON error body: 401 (token), 403 (not a member, or an
/// Origin not allowed), 404 (no meeting), 429 (rate limit or connection cap), 503 (stopping).
struct WebSocketEndpoint {
    let hub: Hub
    let tokens: TokenService
    let meetings: MeetingService
    let limits: ConnectionLimits
    let settings: ServerSettings
    let lifecycle: ServerLifecycle

    struct Admission {
        var user: AuthenticatedUser
        var meeting: MeetingRecord
        var since: Int?
        var epoch: String?
        var subprotocol: String?
    }

    /// Decides an upgrade request on its connection, before the upgrade. Hummingbird's
    /// closure-based upgrade, not its router-based one: that one keeps each connection's
    /// request context in a reference cycle with its handler (a leak per connection).
    func shouldUpgrade(_ head: HTTPRequest, channel: any Channel, logger: Logger) async
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    {
        do {
            let admission = try await admit(head, channel: channel)
            var headers: HTTPFields = [:]
            if let subprotocol = admission.subprotocol { headers[.secWebSocketProtocol] = subprotocol }
            return .upgrade(headers) { inbound, outbound, context in
                try await serve(
                    admission, inbound: inbound, outbound: outbound, socket: channel, logger: context.logger)
            }
        } catch let error as APIError {
            return refuse(error, channel: channel, logger: logger)
        } catch {
            logger.error("websocket admission failed", metadata: ["error": "\(error)"])
            return refuse(.internalError(), channel: channel, logger: logger)
        }
    }

    /// Every check of the upgrade, in the order that reveals least to a stranger.
    func admit(_ head: HTTPRequest, channel: any Channel) async throws -> Admission {
        let components = URLComponents(string: head.path ?? "")
        let segments = (components?.path ?? "").split(separator: "/")
        guard segments.count == 3, segments[0] == "ws", segments[1] == "meeting" else {
            throw APIError.notFound("no WebSocket endpoint at \(components?.path ?? "")")
        }
        let query = Dictionary(
            (components?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
        if lifecycle.isStopping {
            throw APIError(.serviceUnavailable, "stopping", "the server is stopping; reconnect shortly")
        }
        if !limits.attempt(address: channel.remoteAddress?.ipAddress ?? "unknown") {
            throw APIError.tooManyRequests("too many connection attempts from this address")
        }
        if let origin = head.headerFields[.origin], !originAllowed(origin, host: head.authority) {
            throw APIError.forbidden("origin \(origin) is not allowed")
        }
        var token = query["token"]
        var subprotocol: String?
        if token == nil, let offered = head.headerFields[.secWebSocketProtocol] {
            let values = offered.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            token = values.first { $0.split(separator: ".").count == 3 }
            subprotocol = values.first { $0 == "bearer" }
        }
        guard let token, !token.isEmpty else { throw APIError.unauthorized("missing access token") }
        let user = try await tokens.verifyAccess(token)
        if !limits.attempt(userID: user.id) {
            throw APIError.tooManyRequests("too many connection attempts for this user")
        }
        let meeting = try await meetings.meeting(String(segments[2]), for: user)
        var since: Int?
        if let text = query["since"] {
            guard let value = Int(text), value >= 0 else {
                throw APIError.badRequest("since must be an offset (0 or more)", code: "invalid_since")
            }
            since = value
        }
        if limits.openConnections(userID: user.id) >= settings.maxConnectionsPerUser {
            throw APIError.tooManyRequests("this user has \(settings.maxConnectionsPerUser) connections open already")
        }
        return Admission(user: user, meeting: meeting, since: since, epoch: query["epoch"], subprotocol: subprotocol)
    }

    func originAllowed(_ origin: String, host: String?) -> Bool {
        if settings.allowedOrigins.contains("*") || settings.allowedOrigins.contains(origin) { return true }
        // Same host as the request names (any port or scheme): the server's own pages, and
        // clients that name the server itself as their origin.
        guard let host, let originHost = URLComponents(string: origin)?.host else { return false }
        let requestHost = URLComponents(string: "http://\(host)")?.host ?? host
        return originHost.lowercased() == requestHost.lowercased()
    }

    /// Answers the upgrade request with `error` as a plain HTTP response and closes the
    /// connection (Hummingbird itself would answer every refusal with 400).
    func refuse(_ error: APIError, channel: any Channel, logger: Logger) -> ShouldUpgradeResult<
        WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
    > {
        logger.info(
            "websocket refused", metadata: ["http.status": "\(error.status.code)", "error": "\(error.message)"])
        let body = error.body
        var head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: Int(error.status.code)))
        head.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        head.headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        head.headers.add(name: "Connection", value: "close")
        for field in error.headers { head.headers.add(name: field.name.rawName, value: field.value) }
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
            channel.close(promise: nil)
        }
        return .dontUpgrade
    }

    /// One connection, in the task Hummingbird gives it: the hub pushes messages to the socket
    /// from its event loop (`SocketOutlet`); this task reads the client's messages until the
    /// client goes, or the hub closes the subscriber (too slow, token expired, shutdown...),
    /// which stops the reading; then it sends the close frame with the reason's code.
    func serve(
        _ admission: Admission, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
        socket: any Channel, logger: Logger
    ) async throws {
        let user = admission.user
        guard limits.open(userID: user.id) else {
            try await outbound.close(WebSocketErrorCode(codeNumber: 4029), reason: "too many connections")
            return
        }
        defer { limits.close(userID: user.id) }
        try await hub.withChannel(meetingID: admission.meeting.id, epoch: admission.meeting.epoch) { channel in
            let subscriber = try await channel.subscribe(
                viewer: Viewer(userID: user.id, username: user.username), since: admission.since,
                epoch: admission.epoch, outlet: SocketOutlet(channel: socket, closeTimeout: .seconds(5)))
            defer { channel.unsubscribe(subscriber, reason: .clientClosed) }
            try await socket.pipeline.addHandler(ConnectionWatch(subscriber: subscriber), position: .first).get()
            // The token's expiry is a timer on the connection's event loop, not a task.
            let expiry = socket.eventLoop.scheduleTask(
                in: .milliseconds(Int64(max(0, user.expiresAt.timeIntervalSinceNow) * 1000))
            ) { subscriber.close(.tokenExpired) }
            defer { expiry.cancel() }
            do {
                for try await message in inbound.messages(maxSize: settings.maxMessageBytes) {
                    Self.receive(message, from: subscriber, channel: channel)
                }
            } catch {
                logger.debug("websocket read ended", metadata: ["error": "\(error)"])
            }
            if let reason = subscriber.closeReason, reason != .clientClosed {
                try? await outbound.close(WebSocketErrorCode(codeNumber: Int(reason.code)), reason: reason.message)
            }
        }
    }

    /// Client messages: `{"type":"ping"}` gets a `pong`; anything else gets an `error` message
    /// (not numbered) and the connection stays open.
    static func receive(_ message: WebSocketMessage, from subscriber: Subscriber, channel: MeetingChannel) {
        struct Incoming: Decodable { var type: String }
        guard case .text(let text) = message,
            let incoming = try? JSONDecoder().decode(Incoming.self, from: Data(text.utf8))
        else {
            channel.send(ClientError.message("bad_message", "send JSON objects with a \"type\""), to: subscriber)
            return
        }
        switch incoming.type {
        case "ping": channel.send(Keepalive.pong(), to: subscriber)
        case "pong": break
        default:
            channel.send(ClientError.message("unknown_type", "unknown message type '\(incoming.type)'"), to: subscriber)
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
