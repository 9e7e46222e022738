public import Foundation

/// Accounts and their refresh tokens.
public protocol AccountStore: Sendable {
    /// Throws `StoreError.conflict` when the name is taken (names compare case-insensitively).
    func createUser(_ user: UserRecord) async throws
    func user(named username: String) async throws -> UserRecord?
    func user(id: String) async throws -> UserRecord?

    // Refresh tokens are stored hashed.
    func insertRefreshToken(_ token: RefreshTokenRecord) async throws
    /// Marks the token used and returns it, or returns nil when it is unknown. A token that was
    /// already used or revoked is returned with `used` / `revoked` set and is not changed.
    func consumeRefreshToken(hash: String, at date: Date) async throws -> RefreshTokenRecord?
    /// Revokes every token of a rotation family (reuse of an old token, or logout).
    func revokeRefreshFamily(_ family: String) async throws
    /// The families among `families` that were revoked (logged out, or a reused token).
    func revokedFamilies(_ families: [String]) async throws -> Set<String>
}

public struct UserRecord: Sendable, Hashable {
    public var id: String
    public var username: String
    public var passwordHash: String
    public var createdAt: Date

    public init(id: String, username: String, passwordHash: String, createdAt: Date) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}

public struct RefreshTokenRecord: Sendable, Hashable {
    /// SHA-256 of the token, hex. The token itself is never stored.
    public var hash: String
    public var userID: String
    /// All tokens issued by rotating one login share a family.
    public var family: String
    public var expiresAt: Date
    public var used: Bool
    public var revoked: Bool

    public init(
        hash: String, userID: String, family: String, expiresAt: Date, used: Bool = false, revoked: Bool = false
    ) {
        self.hash = hash
        self.userID = userID
        self.family = family
        self.expiresAt = expiresAt
        self.used = used
        self.revoked = revoked
    }
}
