import Foundation
import HTTPTypes
import Hummingbird
import ParleyHub
import ParleyStore

/// `/api/auth`: register, login, refresh (rotating), logout.
struct AuthRoutes {
    let store: any Store
    let tokens: TokenService
    /// The sockets a session opened close when it logs out (here at once, elsewhere at the
    /// hub's next sweep).
    let hub: Hub

    struct Credentials: Decodable {
        var username: String
        var password: String
    }

    struct RefreshRequest: Decodable {
        var refreshToken: String
        enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token" }
    }

    struct Registered: ResponseEncodable {
        var id: String
        var username: String
    }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.post("register") { request, context -> EditedResponse<Registered> in
            let credentials = try await request.decode(as: Credentials.self, context: context)
            try Self.validate(credentials)
            let user = UserRecord(
                id: Identifiers.user(), username: credentials.username,
                passwordHash: try await tokens.hash(password: credentials.password), createdAt: Date())
            do {
                try await store.createUser(user)
            } catch let error as StoreError where error.code == .conflict {
                throw APIError.conflict(error.message)
            }
            return EditedResponse(status: .created, response: Registered(id: user.id, username: user.username))
        }
        group.post("login") { request, context -> TokenPair in
            let credentials = try await request.decode(as: Credentials.self, context: context)
            let user = try await store.user(named: credentials.username)
            // Verify against a decoy when the user is unknown, so timing does not tell names apart.
            let valid = try await tokens.verify(
                password: credentials.password, hash: user?.passwordHash ?? tokens.decoyHash)
            guard let user, valid else {
                throw APIError.unauthorized("wrong username or password", code: "invalid_credentials")
            }
            return try await tokens.issue(for: user)
        }
        group.post("refresh") { request, context -> TokenPair in
            let body = try await request.decode(as: RefreshRequest.self, context: context)
            return try await tokens.rotate(refreshToken: body.refreshToken)
        }
        group.post("logout") { request, context -> HTTPResponse.Status in
            let body = try await request.decode(as: RefreshRequest.self, context: context)
            if let session = try await tokens.revoke(refreshToken: body.refreshToken) {
                hub.closeSessions([session])
            }
            return .noContent
        }
    }

    static func validate(_ credentials: Credentials) throws {
        let name = credentials.username
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-"))
        guard (3...32).contains(name.count), name.unicodeScalars.allSatisfy({ allowed.contains($0) && $0.isASCII })
        else {
            throw APIError.badRequest(
                "the username must be 3 to 32 letters, digits, dots, dashes or underscores", code: "invalid_username")
        }
        guard (8...128).contains(credentials.password.unicodeScalars.count) else {
            throw APIError.badRequest("the password must be 8 to 128 characters", code: "invalid_password")
        }
    }
}

/// Authenticates `Authorization: Bearer <access token>`; every route behind it needs a user.
struct BearerAuthMiddleware: RouterMiddleware {
    let tokens: TokenService

    func handle(
        _ request: Request, context: ParleyRequestContext,
        next: (Request, ParleyRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            // An <audio> element cannot send headers: the recording may take `?token=` (never
            // logged: the request log leaves out query strings).
            if request.method == .get, request.uri.path.hasSuffix("/audio"),
                let token = request.uri.queryParameters.get("token")
            {
                var context = context
                context.user = try await tokens.verifyAccess(token)
                return try await next(request, context)
            }
            throw APIError.unauthorized("missing bearer token")
        }
        guard let token = Self.token(header) else {
            throw APIError.unauthorized("the Authorization header must be 'Bearer <token>'")
        }
        var context = context
        context.user = try await tokens.verifyAccess(token)
        return try await next(request, context)
    }

    /// The token of an `Authorization: Bearer <token>` header (the scheme in any case); nil when
    /// the header is not that.
    static func token(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }
}
