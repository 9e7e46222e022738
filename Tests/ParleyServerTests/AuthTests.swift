import Foundation
import NIOHTTP1
import NIOWebSocket
import ParleyJobs
import ParleyStore
import ParleySynth
import Testing

@testable import ParleyServer

@Suite struct AuthTests {
    @Test func registerLoginRefreshRotateAndLogout() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let registered = try await h.request(
                .POST, "/api/auth/register", json: ["username": "alice", "password": "correct horse"])
            #expect(registered.status == 201)
            let duplicate = try await h.request(
                .POST, "/api/auth/register", json: ["username": "ALICE", "password": "correct horse"])
            #expect(duplicate.status == 409)
            #expect(duplicate.errorCode == "conflict")
            let short = try await h.request(.POST, "/api/auth/register", json: ["username": "al", "password": "x"])
            #expect(short.status == 400)

            let wrong = try await h.request(
                .POST, "/api/auth/login", json: ["username": "alice", "password": "nope nope"])
            #expect(wrong.status == 401)
            #expect(wrong.errorCode == "invalid_credentials")
            let unknown = try await h.request(
                .POST, "/api/auth/login", json: ["username": "zed", "password": "nope nope"])
            #expect(unknown.status == 401)

            let login = try await h.request(
                .POST, "/api/auth/login", json: ["username": "alice", "password": "correct horse"])
            #expect(login.status == 200)
            #expect(login.json["token_type"] as? String == "bearer")
            #expect(login.json["expires_in"] as? Int == 900)
            let access = try #require(login.json["access_token"] as? String)
            let refresh = try #require(login.json["refresh_token"] as? String)
            #expect(try await h.request(.GET, "/api/meetings", token: access).status == 200)

            // Rotation: the new pair works, the old refresh token is spent.
            let rotated = try await h.request(.POST, "/api/auth/refresh", json: ["refresh_token": refresh])
            #expect(rotated.status == 200)
            let refresh2 = try #require(rotated.json["refresh_token"] as? String)
            #expect(refresh2 != refresh)
            #expect(
                try await h.request(.GET, "/api/meetings", token: rotated.json["access_token"] as? String).status == 200
            )

            // Reusing the old one revokes the whole family: the newest token stops working too.
            let reused = try await h.request(.POST, "/api/auth/refresh", json: ["refresh_token": refresh])
            #expect(reused.status == 401)
            #expect(reused.errorCode == "token_reused")
            let afterRevocation = try await h.request(.POST, "/api/auth/refresh", json: ["refresh_token": refresh2])
            #expect(afterRevocation.status == 401)

            // Logout revokes a fresh login's family.
            let second = try await h.request(
                .POST, "/api/auth/login", json: ["username": "alice", "password": "correct horse"])
            let refresh3 = try #require(second.json["refresh_token"] as? String)
            #expect(try await h.request(.POST, "/api/auth/logout", json: ["refresh_token": refresh3]).status == 204)
            #expect(try await h.request(.POST, "/api/auth/refresh", json: ["refresh_token": refresh3]).status == 401)
        }
    }

    @Test func badTokensOnRESTAreUnauthorized() async throws {
        try await ServerFixture.withServer(try ServerFixture.settings()) { h in
            let (id, _) = try await h.user("alice")
            let expired = try await h.server.accessToken(userID: id, username: "alice", lifetime: -10)
            let foreign = try await Self.foreignToken(userID: id)
            for (token, code) in [
                (nil, "unauthorized"), ("not-a-jwt", "invalid_token"), (expired, "token_expired"),
                (foreign, "invalid_token"),
            ] {
                let reply = try await h.request(.GET, "/api/meetings", token: token)
                #expect(reply.status == 401, "\(token ?? "none")")
                #expect(reply.errorCode == code)
            }
            let malformed = try await h.request(.GET, "/api/meetings", headers: [("Authorization", "Basic abc")])
            #expect(malformed.status == 401)
        }
    }

    /// A well-formed token signed with another secret.
    static func foreignToken(userID: String) async throws -> String {
        let other = try ServerFixture.settings { $0.jwtSecret = String(repeating: "x", count: 40) }
        let store = try await SQLStore.sqlite(path: other.engine.databasePath, logger: ServerFixture.logger)
        let tokens = await TokenService(secret: other.jwtSecret!, store: store, settings: other)
        let token = try await tokens.accessToken(userID: userID, username: "alice", lifetime: 600)
        try await store.close()
        return token
    }

    @Test func secretIsGeneratedOnceAndKept() async throws {
        let settings = try ServerFixture.settings()
        let first = try TokenService.secret(settings: settings)
        let second = try TokenService.secret(settings: settings)
        #expect(first == second)
        #expect(first.count >= 43)
        let attributes = try FileManager.default.attributesOfItem(atPath: settings.engine.dataDirectory + "/jwt-secret")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }
}
