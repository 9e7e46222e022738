import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ParleyPluginAPI

/// What the OpenAI-compatible plugins share: where the server is, the key, and requests
/// with retries (429 and 5xx and lost connections, exponential backoff with jitter, honouring
/// Retry-After).
struct OpenAIClient: Sendable {
    let baseURL: String
    let apiKey: String?
    let timeout: Double
    let maxRetries: Int
    let pluginName: String

    init(settings: PluginSettings, pluginName: String) throws(PluginError) {
        guard let base = settings.string("base_url") else {
            throw .badSetting("\(settings.section).base_url", "required (e.g. http://127.0.0.1:8000/v1)")
        }
        guard let url = URL(string: base), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw .badSetting("\(settings.section).base_url", "'\(base)' is not an http(s) URL")
        }
        baseURL = base.hasSuffix("/") ? String(base.dropLast()) : base
        apiKey = settings.string("api_key")
        timeout = try settings.double("timeout", default: 300)
        maxRetries = try settings.int("max_retries", default: 4)
        self.pluginName = pluginName
        guard maxRetries >= 0 else { throw .badSetting("\(settings.section).max_retries", "must be 0 or more") }
    }

    struct Response: Sendable {
        var status: Int
        var body: Data
    }

    /// Whether the server answers at all: GET /models. Any HTTP answer but 401/403 counts.
    func readiness() async -> Readiness {
        var request = HTTPClientRequest(url: "\(baseURL)/models")
        authorize(&request)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 20)
            if response.status == .unauthorized || response.status == .forbidden {
                return .notReady("\(pluginName): \(baseURL) refused the API key (HTTP \(response.status.code))")
            }
            return .ready("\(baseURL) answers (HTTP \(response.status.code))")
        } catch {
            return .notReady("\(pluginName): cannot reach \(baseURL): \(Self.describe(error))")
        }
    }

    func authorize(_ request: inout HTTPClientRequest) {
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
    }

    /// POSTs `body`, retrying what a retry can fix. Returns the final 2xx response.
    func post(path: String, contentType: String, body: Data) async throws -> Data {
        var attempt = 0
        while true {
            var request = HTTPClientRequest(url: "\(baseURL)\(path)")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: contentType)
            authorize(&request)
            request.body = .bytes(ByteBuffer(data: body))
            var retryAfter: Double?
            var failure: PluginError
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout)))
                let bytes = try await response.body.collect(upTo: 64 << 20)
                let data = Data(buffer: bytes)
                if (200..<300).contains(response.status.code) { return data }
                let said = String(decoding: data.prefix(300), as: UTF8.self)
                failure = PluginError(
                    .engine, "\(pluginName): \(baseURL)\(path) answered HTTP \(response.status.code): \(said)")
                guard response.status.code == 429 || response.status.code >= 500 else { throw failure }
                retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
            } catch let error as PluginError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failure = PluginError(.unavailable, "\(pluginName): \(baseURL)\(path): \(Self.describe(error))")
            }
            guard attempt < maxRetries else { throw failure }
            let backoff = retryAfter ?? min(30, 0.5 * pow(2, Double(attempt))) * Double.random(in: 0.8...1.2)
            try await Task.sleep(for: .seconds(backoff))
            attempt += 1
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return "\(error)"
    }
}

/// A multipart/form-data body, for the audio upload.
struct MultipartForm {
    let boundary = "parley-\(UUID().uuidString)"
    private(set) var body = Data()

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    mutating func field(_ name: String, _ value: String) {
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }

    mutating func file(_ name: String, filename: String, contentType: String, data: Data) {
        body.append(
            Data(
                ("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\n"
                    + "Content-Type: \(contentType)\r\n\r\n").utf8))
        body.append(data)
        body.append(Data("\r\n".utf8))
    }

    func finished() -> Data { body + Data("--\(boundary)--\r\n".utf8) }
}
