public import Foundation
public import Hummingbird

/// The request context of every route: Hummingbird's core storage and the user once
/// authenticated.
public struct ParleyRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var user: AuthenticatedUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// JSON request bodies; the audio upload streams and has its own limit.
    public var maxUploadSize: Int { 1 << 20 }

    /// The authenticated user, or 401.
    func requireUser() throws -> AuthenticatedUser {
        guard let user else { throw APIError.unauthorized("missing bearer token") }
        return user
    }
}

/// Who made the request, from a verified access token.
public struct AuthenticatedUser: Sendable, Hashable {
    public var id: String
    public var username: String
    /// When the access token expires.
    public var expiresAt: Date
    /// The login session the token belongs to (nil for tokens made without one).
    public var session: String?
}
