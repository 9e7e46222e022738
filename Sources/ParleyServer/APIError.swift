import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Every error the API returns: `{"error": {"code", "message"}}` with its status.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    var body: ByteBuffer {
        struct Envelope: Encodable {
            struct Detail: Encodable {
                let code: String
                let message: String
            }
            let error: Detail
        }
        let data = (try? JSONEncoder().encode(Envelope(error: .init(code: code, message: message)))) ?? Data()
        return ByteBuffer(bytes: data)
    }

    static func badRequest(_ message: String, code: String = "bad_request") -> Self {
        .init(.badRequest, code, message)
    }
    static func unauthorized(_ message: String, code: String = "unauthorized") -> Self {
        var error = Self(.unauthorized, code, message)
        error.headers[.wwwAuthenticate] = "Bearer"
        return error
    }
    static func forbidden(_ message: String) -> Self { .init(.forbidden, "forbidden", message) }
    static func notFound(_ message: String) -> Self { .init(.notFound, "not_found", message) }
    static func conflict(_ message: String, code: String = "conflict") -> Self { .init(.conflict, code, message) }
    static func tooLarge(_ message: String) -> Self { .init(.contentTooLarge, "too_large", message) }
    static func tooManyRequests(_ message: String) -> Self { .init(.tooManyRequests, "rate_limited", message) }
    static func unsupportedMediaType(_ message: String) -> Self {
        .init(.unsupportedMediaType, "unsupported_media_type", message)
    }
    static func internalError() -> Self { .init(.internalServerError, "internal", "internal server error") }
}

/// Turns every error into the JSON envelope: Hummingbird's own (404 no route, 413 body too
/// large, also when a JSON body passes the context's limit, decoding errors) and unexpected ones (500, details only in the log). A path that is a
/// route, asked with a method it does not take, gets 405 with `Allow` (not 404).
struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as MeetingError {
            throw error  // renders the envelope itself (MeetingError+HTTP.swift)
        } catch let error as HTTPError
            where error.status == .notFound && error.body == nil && !routes.methods(of: request.uri.path).isEmpty
        {
            let allowed = routes.methods(of: request.uri.path)
            var refusal = APIError(
                .methodNotAllowed, "method_not_allowed",
                "\(request.method) is not one of the methods of this path (\(allowed.joined(separator: ", ")))")
            refusal.headers[.allow] = allowed.joined(separator: ", ")
            throw refusal
        } catch let error as HTTPError {
            let code =
                switch error.status {
                case .notFound: "not_found"
                case .contentTooLarge: "too_large"
                case .methodNotAllowed: "method_not_allowed"
                case .unsupportedMediaType: "unsupported_media_type"
                default: error.status.code < 500 ? "bad_request" : "internal"
                }
            throw APIError(error.status, code, error.body ?? error.status.reasonPhrase)
        } catch is DecodingError {
            throw APIError.badRequest("the body is not the JSON this endpoint expects")
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge("the body is larger than the \(context.maxUploadSize) bytes this endpoint takes")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw APIError.internalError()
        }
    }
}

/// The methods each route path takes, read from the router once every route is added.
final class RouteMethods: Sendable {
    private let table = Mutex<[(segments: [Substring], methods: [String])]>([])

    /// Records the router's routes (call once they are all added).
    func record(_ routes: [(path: String, method: String)]) {
        var byPath: [String: [String]] = [:]
        for route in routes { byPath[route.path, default: []].append(route.method) }
        table.withLock { table in
            table = byPath.map { path, methods in
                (path.split(separator: "/"), Array(Set(methods)).sorted())
            }
        }
    }

    /// The methods of the route whose path matches (`:name` segments match any one segment);
    /// empty when no route has this path.
    func methods(of path: String) -> [String] {
        let asked = path.split(separator: "/")
        return table.withLock { table in
            for route in table where route.segments.count == asked.count {
                let matches = zip(route.segments, asked).allSatisfy { pattern, segment in
                    pattern.hasPrefix(":") || pattern.hasPrefix("{") || pattern == segment
                }
                if matches { return route.methods }
            }
            return []
        }
    }
}

/// Security headers on every response, pages and API alike: a Content-Security-Policy that
/// allows only the app's own scripts, styles, media and sockets (no inline script, no framing),
/// no MIME sniffing, and no referrer sent elsewhere. Errors thrown further in are rendered here
/// so they carry the headers too.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var policy: String {
        [
            "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
            "media-src 'self' blob:", "connect-src 'self' ws: wss:", "object-src 'none'", "base-uri 'none'",
            "form-action 'self'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    static var referrerPolicy: HTTPField.Name { HTTPField.Name("Referrer-Policy")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[Self.referrerPolicy] = "no-referrer"
        return response
    }
}

/// Logs each request's method, path (never the query: tokens may be in it), status and time.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = ContinuousClock.now
        func log(_ status: Int) {
            context.logger.info(
                "request",
                metadata: [
                    "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "http.status": "\(status)",
                    "http.duration": "\(ContinuousClock.now - start)",
                ])
        }
        do {
            let response = try await next(request, context)
            log(response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            log(error.status.code)
            throw error
        }
    }
}
