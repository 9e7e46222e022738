import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import NIOWebSocket
import ParleyJobs
import ParleyPipeline
import Synchronization
import Testing

@testable import ParleyServer

/// `parley serve --tls-cert --tls-key`: HTTPS and WSS from Parley itself, with a certificate
/// made here by openssl (as a user makes a self-signed one), and real TLS clients.
@Suite struct TLSTests {
    /// A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files).
    static func certificate(in folder: String, name: String = "server", rsa: Bool = false) throws -> (
        cert: String, key: String
    ) {
        let (cert, key) = ("\(folder)/\(name).crt", "\(folder)/\(name).key")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments =
            [
                "req", "-x509", "-newkey",
            ] + (rsa ? ["rsa:2048"] : ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]) + [
                "-nodes", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", key, "-out", cert,
            ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl could not make a certificate")
        return (cert, key)
    }

    static func client(trusting cert: String?) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let cert { tls.trustRoots = .file(cert) }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        // A refused certificate is retried until the connect timeout: keep that short.
        configuration.timeout.connect = .seconds(2)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    static func send(
        _ client: HTTPClient, _ method: HTTPMethod, _ url: String, json: [String: String]? = nil, token: String? = nil
    ) async throws -> (status: Int, json: [String: Any], headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        return (Int(response.status.code), object, response.headers)
    }

    @Test func aServerWithACertificateServesHTTPSAndWSS() async throws {
        let folder = try ServerFixture.scratch("tls")
        let (cert, key) = try Self.certificate(in: folder)
        let settings = try ServerFixture.settings {
            $0.tlsCertificate = cert
            $0.tlsKey = key
        }
        #expect(settings.scheme == "https")
        try await ServerFixture.withServer(settings) { h in
            let base = "https://localhost:\(h.port)"  // SNI takes a name, not an address
            let client = Self.client(trusting: cert)
            do {
                let health = try await Self.send(client, .GET, "\(base)/health")
                #expect(health.status == 200)
                #expect(health.headers.first(name: "X-Content-Type-Options") == "nosniff")
                let password = "correct horse"
                #expect(
                    try await Self.send(
                        client, .POST, "\(base)/api/auth/register", json: ["username": "tess", "password": password]
                    ).status == 201)
                let login = try await Self.send(
                    client, .POST, "\(base)/api/auth/login", json: ["username": "tess", "password": password])
                let token = try #require(login.json["access_token"] as? String)
                let meeting = try await Self.send(
                    client, .POST, "\(base)/api/meetings", json: ["title": "Over TLS"], token: token)
                let id = try #require(meeting.json["id"] as? String)

                // WSS: the live events over the same port, the upgrade inside TLS.
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(cert)
                let first = Collected()
                let close = try await WebSocketClient.connect(
                    url: "wss://localhost:\(h.port)/ws/meeting/\(id)?token=\(token)", tlsConfiguration: tls,
                    logger: Logger(label: "wss-test")
                ) { inbound, outbound, _ in
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message else { continue }
                        first.messages.withLock { $0.append(Wire(text)) }
                        try await outbound.close(.normalClosure, reason: "seen")
                        return
                    }
                }
                #expect(first.messages.withLock { $0.first?.type } == "connected")
                #expect(close?.closeCode == .normalClosure)

                // A client that does not trust the certificate is refused by its own TLS, and
                // plain HTTP on the TLS port gets no answer; the server serves on.
                let stranger = Self.client(trusting: nil)
                await #expect(throws: (any Error).self) { _ = try await Self.send(stranger, .GET, "\(base)/health") }
                try await stranger.shutdown()
                await #expect(throws: (any Error).self) {
                    _ = try await Self.send(HTTPClient.shared, .GET, "http://127.0.0.1:\(h.port)/health")
                }
                #expect(try await Self.send(client, .GET, "\(base)/health").status == 200)
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test func aWrongCertificateOrKeyStopsTheStartWithItsReason() async throws {
        let folder = try ServerFixture.scratch("tls-wrong")
        let (cert, key) = try Self.certificate(in: folder)
        let (_, otherKey) = try Self.certificate(in: folder, name: "other")
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: "\(folder)/junk.pem"))
        let cases: [(String, String, String)] = [
            ("\(folder)/missing.crt", key, "cannot read the TLS certificate \(folder)/missing.crt: no such file"),
            ("\(folder)/junk.pem", key, "cannot read the TLS certificate \(folder)/junk.pem"),
            (cert, "\(folder)/junk.pem", "cannot read the TLS private key \(folder)/junk.pem"),
            (cert, otherKey, "do not go together: the key is not the certificate's"),
        ]
        for (certificate, privateKey, reason) in cases {
            let settings = try ServerFixture.settings {
                $0.tlsCertificate = certificate
                $0.tlsKey = privateKey
            }
            do {
                _ = try await ParleyServer.build(
                    settings: settings, logger: ServerFixture.logger, makePipeline: ServerFixture.pipeline())
                Issue.record("the server started with \(certificate) and \(privateKey)")
            } catch {
                #expect("\(error)".contains(reason), "\(error)")
            }
        }
        // The pair is checked before TLS is set up (EC and RSA keys alike).
        #expect(ServerTLS.keyMatches(certificate: cert, key: key) == true)
        #expect(ServerTLS.keyMatches(certificate: cert, key: otherKey) == false)
        let (rsaCert, rsaKey) = try Self.certificate(in: folder, name: "rsa", rsa: true)
        #expect(ServerTLS.keyMatches(certificate: rsaCert, key: rsaKey) == true)
        #expect(ServerTLS.keyMatches(certificate: rsaCert, key: key) == false)
        #expect(ServerTLS.keyMatches(certificate: "\(folder)/junk.pem", key: key) == nil)
        // One without the other is a settings error, before anything starts.
        #expect(throws: SettingsError.self) {
            _ = try ServerSettings(configuration: ParleyConfiguration(values: ["server.tls_cert": cert]))
        }
        let both = try ServerSettings(
            configuration: ParleyConfiguration(values: ["server.tls_cert": cert, "server.tls_key": key]))
        #expect(both.tlsCertificate == cert && both.tlsKey == key && both.scheme == "https")
    }
}
