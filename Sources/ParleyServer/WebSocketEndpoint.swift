import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import ParleyHub
import ParleyPipeline
import ParleyStore

/// `GET /ws/meeting/{id}?token=<jwt>[&since=<offset>][&epoch=<epoch>]` to watch a meeting,
/// `GET /ws/meeting/{id}/ingest?token=<jwt>[&resume=<bytes>]` to record it (owner and members
/// with edit rights), and `GET /ws/user?token=<jwt>[&since=<offset>][&epoch=<epoch>]` for the
/// user's own notifications; the token may come as a `Sec-WebSocket-Protocol` value next to
/// `bearer` instead. Checks run before the upgrade, and a refusal is an HTTP status with the JSON error
/// body: 401 (token), 403 (not a member or may not edit, or an Origin not allowed), 404 (no
/// meeting), 409 (a recording that cannot start or resume), 429 (rate limit or connection cap),
/// 503 (stopping).
struct WebSocketEndpoint {
    let hub: Hub
    let tokens: TokenService
    let meetings: MeetingService
    let limits: ConnectionLimits
    let settings: ServerSettings
    let lifecycle: ServerLifecycle
    let deflate: WebSocketDeflate

    struct Admission {
        var user: AuthenticatedUser
        /// The meeting watched or recorded; nil for the user's own socket.
        var meeting: MeetingRecord?
        var since: Int?
        var epoch: String?
        var subprotocol: String?
        /// An ingest connection (recording), and the bytes the client had acknowledged.
        var ingest = false
        var resume: Int64?
        /// The user may edit the meeting (and so say what they are editing).
        var canEdit = false
    }

    /// What the checks read of an upgrade request.
    struct UpgradeRequest: Sendable {
        var path: String
        var host: String?
        var origin: String?
        var protocols: String?
        /// `Sec-WebSocket-Extensions` as offered (permessage-deflate).
        var extensions: String?

        init(_ head: HTTPRequestHead) {
            path = head.uri
            host = head.headers.first(name: "host")
            origin = head.headers.first(name: "origin")
            let offered = head.headers["sec-websocket-protocol"]
            protocols = offered.isEmpty ? nil : offered.joined(separator: ",")
            let extensionOffers = head.headers["sec-websocket-extensions"]
            extensions = extensionOffers.isEmpty ? nil : extensionOffers.joined(separator: ",")
        }
    }

    /// An admitted connection, held until the upgrade is done: a watcher (subscribed) or a
    /// recording's ingest connection (attached).
    struct Upgrade: Sendable {
        enum Role: Sendable {
            /// A meeting's watcher, or (no meeting) the user's own socket.
            case watch(Subscriber, SocketOutlet, MeetingChannel?, canEdit: Bool)
            case ingest(IngestConnection)
        }
        var headers: HTTPHeaders
        var role: Role
        /// permessage-deflate was agreed: the client's compressed messages are inflated.
        var deflate: WebSocketDeflate?
    }

    /// Decides an upgrade request before the upgrade: admits it and subscribes it to the
    /// meeting (held until the socket is ready), or answers it with its HTTP status and
    /// returns nil. Whatever the connection holds is let go when it closes.
    func upgrade(_ request: UpgradeRequest, channel: any Channel, logger: Logger) async -> Upgrade? {
        do {
            let admission = try await admit(request, channel: channel)
            let user = admission.user
            guard limits.open(userID: user.id) else {
                throw APIError.tooManyRequests(
                    "this user has \(settings.maxConnectionsPerUser) connections open already")
            }
            if admission.ingest { return try await ingest(admission, channel: channel, logger: logger) }
            // permessage-deflate when the client offers it and the server allows it.
            let accepted = deflate.accept(request.extensions)
            let outlet = SocketOutlet(
                channel: channel, closeTimeout: .seconds(5), deflate: accepted == nil ? nil : deflate)
            // A meeting's channel, or the user's own feed.
            let (group, release): (any SubscriberGroup, @Sendable () -> Void)
            let subscriber: Subscriber
            do {
                if let record = admission.meeting {
                    group = try await hub.acquire(meetingID: record.id, epoch: record.epoch)
                    release = { [hub] in hub.release(meetingID: record.id) }
                } else {
                    group = try await hub.acquireFeed(userID: user.id)
                    release = { [hub] in hub.releaseFeed(userID: user.id) }
                }
                do {
                    subscriber = try await group.subscribe(
                        viewer: Viewer(userID: user.id, username: user.username), session: user.session,
                        since: admission.since, epoch: admission.epoch, outlet: outlet)
                } catch {
                    release()
                    throw error
                }
            } catch {
                limits.close(userID: user.id)
                throw error
            }
            // The token's expiry is a timer on the connection's event loop.
            let expiry = channel.eventLoop.scheduleTask(
                in: .milliseconds(Int64(max(0, user.expiresAt.timeIntervalSinceNow) * 1000))
            ) { subscriber.close(.tokenExpired) }
            channel.closeFuture.whenComplete { [limits] _ in
                expiry.cancel()
                group.unsubscribe(subscriber, reason: .clientClosed)
                release()
                limits.close(userID: user.id)
            }
            var headers = HTTPHeaders()
            if let subprotocol = admission.subprotocol {
                headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol)
            }
            if let accepted { headers.add(name: "Sec-WebSocket-Extensions", value: accepted) }
            let meeting = group as? MeetingChannel
            return Upgrade(
                headers: headers, role: .watch(subscriber, outlet, meeting, canEdit: admission.canEdit),
                deflate: outlet.deflate)
        } catch let error as APIError {
            refuse(error, channel: channel, logger: logger)
        } catch let error as MeetingError {
            refuse(error.apiError, channel: channel, logger: logger)
        } catch {
            logger.error("websocket admission failed", metadata: ["error": "\(error)"])
            refuse(.internalError(), channel: channel, logger: logger)
        }
        return nil
    }

    /// Attaches an admitted ingest connection to the meeting's recording (starting it, or
    /// resuming it); the connection it replaced, if any, is closed.
    private func ingest(_ admission: Admission, channel: any Channel, logger: Logger) async throws -> Upgrade {
        guard let meeting = admission.meeting else { throw APIError.internalError() }
        let connection = IngestConnection(
            outlet: SocketOutlet(channel: channel, closeTimeout: .seconds(5)), userID: admission.user.id,
            logger: logger)
        let replaced: IngestConnection?
        do {
            replaced = try await meetings.ingest(meeting, connection: connection, resume: admission.resume)
        } catch {
            limits.close(userID: admission.user.id)
            throw error
        }
        replaced?.close(code: 4010, reason: "another connection continues the recording")
        channel.closeFuture.whenComplete { [limits] _ in
            connection.recording?.detach(connection)
            limits.close(userID: admission.user.id)
        }
        var headers = HTTPHeaders()
        if let subprotocol = admission.subprotocol {
            headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol)
        }
        return Upgrade(headers: headers, role: .ingest(connection))
    }

    /// Every check of the upgrade, in the order that reveals least to a stranger.
    func admit(_ head: UpgradeRequest, channel: any Channel) async throws -> Admission {
        let components = URLComponents(string: head.path)
        let segments = (components?.path ?? "").split(separator: "/")
        let user = segments == ["ws", "user"]
        let watches =
            (3...4).contains(segments.count) && segments[0] == "ws" && segments[1] == "meeting"
            && (segments.count == 3 || segments[3] == "ingest")
        guard user || watches else {
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
        if let origin = head.origin, !originAllowed(origin, host: head.host) {
            throw APIError.forbidden("origin \(origin) is not allowed")
        }
        var token = query["token"]
        var subprotocol: String?
        if token == nil, let offered = head.protocols {
            let values = offered.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            token = values.first { $0.split(separator: ".").count == 3 }
            subprotocol = values.first { $0 == "bearer" }
        }
        guard let token, !token.isEmpty else { throw APIError.unauthorized("missing access token") }
        let account = try await tokens.verifyAccess(token)
        if !limits.attempt(userID: account.id) {
            throw APIError.tooManyRequests("too many connection attempts for this user")
        }
        let since = try Self.since(query["since"])
        if user {
            return Admission(
                user: account, meeting: nil, since: since, epoch: query["epoch"], subprotocol: subprotocol)
        }
        let ingest = segments.count == 4
        let (meeting, access) = try await meetings.meetingAccess(
            String(segments[2]), for: account, need: ingest ? .edit : .watch)
        return Admission(
            user: account, meeting: meeting, since: since, epoch: query["epoch"],
            subprotocol: subprotocol, ingest: ingest, resume: try Self.resume(query["resume"]), canEdit: access >= .edit
        )
    }

    /// The `since` query parameter: nil when absent, 400 when it is not an offset.
    static func since(_ text: String?) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), value >= 0 else {
            throw APIError.badRequest("since must be an offset (0 or more)", code: "invalid_since")
        }
        return value
    }

    /// The `resume` query parameter of an ingest connection: bytes the client had acknowledged.
    static func resume(_ text: String?) throws -> Int64? {
        guard let text else { return nil }
        guard let value = Int64(text), value >= 0 else {
            throw APIError.badRequest("resume must be a byte count (0 or more)", code: "invalid_resume")
        }
        return value
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
    /// connection (NIO's upgrader would answer every refusal with 400).
    func refuse(_ error: APIError, channel: any Channel, logger: Logger) {
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
    }
}
