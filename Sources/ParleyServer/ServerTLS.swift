import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// HTTPS and WSS served by Parley itself (`--tls-cert`, `--tls-key`): the certificate chain and
/// key read once at start, so a wrong file stops the start with a reason rather than failing
/// every handshake later.
enum ServerTLS {
    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    /// A server context offering TLS 1.2 and 1.3 and HTTP/1.1 (ALPN), from PEM files.
    static func context(certificate: String, key: String) throws -> NIOSSLContext {
        for (what, path) in [("certificate", certificate), ("private key", key)]
        where !FileManager.default.isReadableFile(atPath: path) {
            throw LoadError(description: "cannot read the TLS \(what) \(path): no such file, or not readable")
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw LoadError(description: "cannot read the TLS certificate \(certificate): \(Self.reason(error))")
        }
        guard !chain.isEmpty else {
            throw LoadError(description: "the TLS certificate file \(certificate) holds no PEM certificate")
        }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw LoadError(description: "cannot read the TLS private key \(key): \(Self.reason(error))")
        }
        // Checked here first: NIOSSLContext does not free its SSL_CTX when the key is refused.
        if Self.keyMatches(certificate: certificate, key: key) == false {
            throw LoadError(
                description: "the TLS certificate \(certificate) and key \(key) do not go together: "
                    + "the key is not the certificate's")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(
                description:
                    "the TLS certificate \(certificate) and key \(key) do not go together: \(Self.reason(error))")
        }
    }

    /// Whether the key file's private key is the one of the certificate file's first
    /// certificate; nil when either cannot be read this way (NIOSSL then decides).
    static func keyMatches(certificate: String, key: String) -> Bool? {
        func firstBlock(_ path: String, endingWith label: String) -> String? {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            var rest = text[...]
            while let begin = rest.range(of: "-----BEGIN ") {
                guard let end = rest.range(of: "-----END ", range: begin.upperBound..<rest.endIndex),
                    let close = rest.range(of: "-----", range: end.upperBound..<rest.endIndex)
                else { return nil }
                let block = rest[begin.lowerBound..<close.upperBound]
                if rest[end.upperBound..<close.lowerBound].hasSuffix(label) { return String(block) }
                rest = rest[close.upperBound...]
            }
            return nil
        }
        guard let leafPEM = firstBlock(certificate, endingWith: "CERTIFICATE"),
            let keyPEM = firstBlock(key, endingWith: "PRIVATE KEY"),
            let leaf = try? Certificate(pemEncoded: leafPEM),
            let privateKey = try? Certificate.PrivateKey(pemEncoded: keyPEM)
        else { return nil }
        return privateKey.publicKey == leaf.publicKey
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? NIOSSLError, case .failedToLoadCertificate = error { return "not a PEM certificate" }
        if let error = error as? NIOSSLError, case .failedToLoadPrivateKey = error { return "not a PEM private key" }
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }
}
