public import Foundation
public import Hummingbird
public import HummingbirdWebSocket
public import NIOCore

/// The request context of every route: Hummingbird's core storage, the WebSocket upgrade
/// slot, the connection (for the peer's address and to refuse an upgrade with a status), and
/// the user once authenticated.
public struct ParleyRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public let channel: any Channel
    public var user: AuthenticatedUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }

    /// JSON request bodies; the audio upload streams and has its own limit.
    public var maxUploadSize: Int { 1 << 20 }

    /// The authenticated user, or 401.
    func requireUser() throws -> AuthenticatedUser {
        guard let user else { throw APIError.unauthorized("missing bearer token") }
        return user
    }

    var peerAddress: String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// Who made the request, from a verified access token.
public struct AuthenticatedUser: Sendable, Hashable {
    public var id: String
    public var username: String
    /// When the access token expires.
    public var expiresAt: Date
}
