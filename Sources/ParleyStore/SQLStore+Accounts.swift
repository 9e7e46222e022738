public import Foundation
import SQLKit

/// Accounts and refresh tokens (`AccountStore`).
extension SQLStore: AccountStore {
    public func createUser(_ user: UserRecord) async throws {
        let rows = try await database.raw(
            """
            INSERT INTO users (id, username, username_key, password_hash, created_at)
            VALUES (\(bind: user.id), \(bind: user.username), \(bind: user.username.lowercased()),
                    \(bind: user.passwordHash), \(bind: Self.milliseconds(user.createdAt)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        if rows.isEmpty { throw StoreError.conflict("the username '\(user.username)' is taken") }
    }

    public func user(named username: String) async throws -> UserRecord? {
        try await database.raw(
            "SELECT id, username, password_hash, created_at FROM users WHERE username_key = \(bind: username.lowercased())"
        ).first().map(Self.user)
    }

    public func user(id: String) async throws -> UserRecord? {
        try await database.raw("SELECT id, username, password_hash, created_at FROM users WHERE id = \(bind: id)")
            .first().map(Self.user)
    }

    // MARK: Refresh tokens

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        try await database.raw(
            """
            INSERT INTO refresh_tokens (hash, user_id, family, expires_at, used, revoked)
            VALUES (\(bind: token.hash), \(bind: token.userID), \(bind: token.family),
                    \(bind: Self.milliseconds(token.expiresAt)), \(bind: token.used ? 1 : 0), \(bind: token.revoked ? 1 : 0))
            """
        ).run()
    }

    public func consumeRefreshToken(hash: String, at date: Date) async throws -> RefreshTokenRecord? {
        // One statement marks it used only if it was not, so two concurrent refreshes with the
        // same token cannot both succeed.
        let claimed = try await database.raw(
            """
            UPDATE refresh_tokens SET used = 1, used_at = \(bind: Self.milliseconds(date))
            WHERE hash = \(bind: hash) AND used = 0 AND revoked = 0
            RETURNING hash, user_id, family, expires_at
            """
        ).first()
        if let claimed {
            return try Self.refreshToken(claimed)  // fresh when presented: neither used nor revoked
        }
        guard
            let row = try await database.raw(
                "SELECT hash, user_id, family, expires_at, used, revoked FROM refresh_tokens WHERE hash = \(bind: hash)"
            ).first()
        else { return nil }
        return try Self.refreshToken(row)
    }

    public func revokeRefreshFamily(_ family: String) async throws {
        try await database.raw("UPDATE refresh_tokens SET revoked = 1 WHERE family = \(bind: family)").run()
    }

    public func revokedFamilies(_ families: [String]) async throws -> Set<String> {
        struct Row: Decodable { var family: String }
        var revoked: Set<String> = []
        try await Self.inChunks(families) { chunk in
            let rows = try await database.raw(
                """
                SELECT DISTINCT family FROM refresh_tokens
                WHERE revoked = 1 AND family IN (\(binds: Array(chunk)))
                """
            ).all(decoding: Row.self)
            for row in rows { revoked.insert(row.family) }
        }
        return revoked
    }
}
