import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import JWTKit
import NIOPosix
import ParleyJobs
import ParleyStore

/// The claims of an access token.
struct AccessClaims: JWTPayload {
    var sub: SubjectClaim
    var name: String
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    /// The login session (refresh family) the token belongs to: its sockets close when it logs out.
    var sid: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// What `login` and `refresh` return.
struct TokenPair: Codable, ResponseEncodable {
    var accessToken: String
    var refreshToken: String
    var tokenType = "bearer"
    var expiresIn: Int

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token", refreshToken = "refresh_token", tokenType = "token_type",
            expiresIn = "expires_in"
    }
}

/// Passwords (bcrypt), access tokens (HS256 JWT) and rotating refresh tokens (random,
/// stored as SHA-256; presenting a used one revokes its whole family).
final class TokenService: Sendable {
    let keys: JWTKeyCollection
    let store: any Store
    let accessLifetime: TimeInterval
    let refreshLifetime: TimeInterval
    let bcryptCost: UInt8

    init(secret: String, store: any Store, settings: ServerSettings) async {
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.store = store
        accessLifetime = settings.accessTokenLifetime
        refreshLifetime = settings.refreshTokenLifetime
        bcryptCost = UInt8(settings.bcryptCost)
        decoyHash = Bcrypt.hash(Self.randomToken(bytes: 12), cost: UInt8(settings.bcryptCost))
    }

    // MARK: Passwords (on the thread pool: bcrypt takes a quarter second at cost 12)

    func hash(password: String) async throws -> String {
        let cost = bcryptCost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash to check against when the user does not exist, so both cases take as long.
    let decoyHash: String

    // MARK: Tokens

    /// A new login: a new refresh family.
    func issue(for user: UserRecord) async throws -> TokenPair {
        try await issue(userID: user.id, username: user.username, family: Self.randomToken(bytes: 16))
    }

    /// Exchanges a refresh token for a new pair. A token presented twice means it leaked: the
    /// family is revoked and every token of it stops working.
    func rotate(refreshToken: String) async throws -> TokenPair {
        let now = Date()
        guard let record = try await store.consumeRefreshToken(hash: Self.digest(refreshToken), at: now) else {
            throw APIError.unauthorized("unknown refresh token", code: "invalid_token")
        }
        if record.used || record.revoked {
            try await store.revokeRefreshFamily(record.family)
            throw APIError.unauthorized(
                "this refresh token was already used; every session of this login is revoked", code: "token_reused")
        }
        guard record.expiresAt > now else {
            throw APIError.unauthorized("the refresh token expired; log in again", code: "token_expired")
        }
        guard let user = try await store.user(id: record.userID) else {
            throw APIError.unauthorized("the user no longer exists", code: "invalid_token")
        }
        return try await issue(userID: user.id, username: user.username, family: record.family)
    }

    /// Logout: revokes the refresh token's family and returns it (the session whose sockets
    /// close). Unknown tokens are not an error.
    @discardableResult
    func revoke(refreshToken: String) async throws -> String? {
        guard let record = try await store.consumeRefreshToken(hash: Self.digest(refreshToken), at: Date()) else {
            return nil
        }
        try await store.revokeRefreshFamily(record.family)
        return record.family
    }

    func verifyAccess(_ token: String) async throws -> AuthenticatedUser {
        do {
            let claims = try await keys.verify(token, as: AccessClaims.self)
            return AuthenticatedUser(
                id: claims.sub.value, username: claims.name, expiresAt: claims.exp.value, session: claims.sid)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw APIError.unauthorized("the access token expired", code: "token_expired")
        } catch {
            throw APIError.unauthorized("invalid access token", code: "invalid_token")
        }
    }

    /// An access token for `user` valid for `lifetime` seconds (tests and the load benchmark
    /// use short or long ones).
    func accessToken(userID: String, username: String, lifetime: TimeInterval, session: String? = nil) async throws
        -> String
    {
        let now = Date()
        return try await keys.sign(
            AccessClaims(
                sub: .init(value: userID), name: username, exp: .init(value: now.addingTimeInterval(lifetime)),
                iat: .init(value: now), sid: session))
    }

    private func issue(userID: String, username: String, family: String) async throws -> TokenPair {
        let access = try await accessToken(
            userID: userID, username: username, lifetime: accessLifetime, session: family)
        let refresh = Self.randomToken(bytes: 32)
        try await store.insertRefreshToken(
            RefreshTokenRecord(
                hash: Self.digest(refresh), userID: userID, family: family,
                expiresAt: Date().addingTimeInterval(refreshLifetime)))
        return TokenPair(accessToken: access, refreshToken: refresh, expiresIn: Int(accessLifetime))
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func randomToken(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(raw).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The configured secret, or the one stored in the data directory, created (mode 0600)
    /// on first start.
    static func secret(settings: ServerSettings) throws -> String {
        if let secret = settings.jwtSecret {
            guard secret.utf8.count >= 32 else {
                throw APIError(.internalServerError, "bad_configuration", "server.jwt_secret must be at least 32 bytes")
            }
            return secret
        }
        let path = (settings.engine.dataDirectory as NSString).appendingPathComponent("jwt-secret")
        if let stored = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines),
            stored.utf8.count >= 32
        {
            return stored
        }
        try FileManager.default.createDirectory(
            atPath: settings.engine.dataDirectory, withIntermediateDirectories: true)
        let secret = randomToken(bytes: 48)
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw APIError(.internalServerError, "bad_configuration", "cannot write \(path)")
        }
        return secret
    }
}
