import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ParleyEvents
import ParleyHub
import ParleyStore
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where a webhook may post: an http(s) URL whose host is not on loopback, a private network,
/// link-local or otherwise not on the internet, unless the server allows it
/// (`server.webhooks_allow_private`): a webhook must not be a way to probe the server's own
/// network. Checked when it is made (an address written out) and before every attempt (the
/// name resolved then).
enum WebhookAddress {
    static func check(_ text: String, allowPrivate: Bool) throws -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, text.count <= 2000
        else {
            throw APIError.badRequest("url must be an http or https URL with a host", code: "invalid_url")
        }
        if !allowPrivate, let address = literal(host), !isPublic(address) {
            throw APIError(
                .unprocessableContent, "private_address",
                "\(host) is not a public address (server.webhooks_allow_private allows it)")
        }
        return url
    }

    /// The host's addresses as the resolver gives them (an address written out as itself).
    static func resolve(_ host: String) -> [[UInt8]] {
        if let address = literal(host) { return [address] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [[UInt8]] = []
        var next = result
        while let info = next {
            if info.pointee.ai_family == AF_INET, let raw = info.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    addresses.append(withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) })
                }
            } else if info.pointee.ai_family == AF_INET6, let raw = info.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    addresses.append(withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) })
                }
            }
            next = info.pointee.ai_next
        }
        return addresses
    }

    /// 4 or 16 bytes when `host` is an address written out.
    static func literal(_ host: String) -> [UInt8]? {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var v4 = in_addr()
        if inet_pton(AF_INET, bare, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, bare, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }

    /// Whether an address is on the internet: not loopback, private (RFC 1918, unique local),
    /// link-local, carrier-grade NAT, unspecified, multicast or reserved.
    static func isPublic(_ address: [UInt8]) -> Bool {
        if address.count == 16 {
            if address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xff && address[11] == 0xff {
                return isPublic(Array(address[12...]))  // IPv4-mapped
            }
            if address.allSatisfy({ $0 == 0 }) || address == [UInt8](repeating: 0, count: 15) + [1] { return false }
            if address[0] & 0xfe == 0xfc { return false }  // fc00::/7
            if address[0] == 0xfe && address[1] & 0xc0 == 0x80 { return false }  // fe80::/10
            if address[0] == 0xff { return false }  // multicast
            return true
        }
        guard address.count == 4 else { return false }
        let (a, b) = (address[0], address[1])
        return
            !(a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (16...31).contains(b))
            || (a == 192 && b == 168) || (a == 100 && (64...127).contains(b)) || a >= 224)
    }
}

/// Sends queued deliveries: `POST` of the JSON body with `X-Parley-Event`, `X-Parley-Delivery`
/// (the same on every retry) and `X-Parley-Signature: sha256=<hex HMAC-SHA256 of the body with
/// the webhook's secret>`. A 2xx answer delivers it; anything else (or no answer within the
/// timeout) is tried again after 10 s, 20 s, 40 s ... (at most an hour apart) until a day after
/// it was queued, then it is failed. Redirects are not followed. Any node may send a delivery;
/// each is claimed under a lease, so one sends it at a time.
final class WebhookDeliverer: Service, Sendable {
    struct Settings: Sendable {
        var allowPrivate = false
        var retryBase: TimeInterval = 10
        var retryFor: TimeInterval = 24 * 3600
        var timeout: TimeInterval = 10
    }

    let store: any Store
    let settings: Settings
    let node: String
    let logger: Logger
    private let wake: AsyncStream<Void>
    private let wakeSignal: AsyncStream<Void>.Continuation

    init(store: any Store, settings: Settings, node: String, logger: Logger) {
        self.store = store
        self.settings = settings
        self.node = node
        self.logger = logger
        (wake, wakeSignal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Something was queued: look now rather than at the next tick.
    func poke() { wakeSignal.yield() }

    func run() async throws {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(
            connect: .seconds(Int64(settings.timeout)), read: .seconds(Int64(settings.timeout)))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        // A tick a second also finds retries that became due and other nodes' queued deliveries.
        let ticks = Task { [wakeSignal] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                wakeSignal.yield()
            }
        }
        for await _ in wake.cancelOnGracefulShutdown() {
            await deliverDue(client: client)
        }
        ticks.cancel()
        try? await client.shutdown()
    }

    func deliverDue(client: HTTPClient) async {
        while !Task.isCancelled {
            let jobs: [DeliveryJob]
            do {
                let now = Date()
                jobs = try await store.claimDeliveries(
                    owner: node, until: now.addingTimeInterval(settings.timeout * 3 + 30), now: now, limit: 16)
            } catch {
                logger.warning("cannot claim webhook deliveries", metadata: ["error": "\(store.describe(error))"])
                return
            }
            if jobs.isEmpty { return }
            await withTaskGroup(of: Void.self) { group in
                for job in jobs { group.addTask { await self.deliver(job, client: client) } }
            }
        }
    }

    func deliver(_ job: DeliveryJob, client: HTTPClient) async {
        let outcome = await attempt(job, client: client)
        do {
            try await store.recordAttempt(deliveryID: job.id, owner: node, outcome: outcome, at: Date())
        } catch {
            logger.warning(
                "cannot record a webhook attempt",
                metadata: ["delivery": "\(job.id)", "error": "\(store.describe(error))"])
        }
    }

    func attempt(_ job: DeliveryJob, client: HTTPClient) async -> DeliveryOutcome {
        let settings = settings
        let retry = { (status: Int?, error: String) -> DeliveryOutcome in
            let delay = min(3600, settings.retryBase * pow(2, Double(min(job.attempts, 20))))
            let at = Date().addingTimeInterval(delay)
            if at.timeIntervalSince(job.createdAt) > settings.retryFor {
                return .failed(status: status, error: "gave up after \(job.attempts + 1) attempts: \(error)")
            }
            return .retry(status: status, error: error, at: at)
        }
        let url: URL
        do {
            url = try WebhookAddress.check(job.url, allowPrivate: settings.allowPrivate)
        } catch {
            return .failed(status: nil, error: "\(error)")
        }
        if !settings.allowPrivate {
            // getaddrinfo blocks: on a dispatch thread, never on the cooperative pool.
            let host = url.host ?? ""
            let addresses = await withCheckedContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(returning: WebhookAddress.resolve(host)) }
            }
            if addresses.isEmpty { return retry(nil, "cannot resolve \(url.host ?? "")") }
            if !addresses.allSatisfy(WebhookAddress.isPublic) {
                return .failed(status: nil, error: "\(url.host ?? "") resolves to an address that is not public")
            }
        }
        var request = HTTPClientRequest(url: job.url)
        request.method = .POST
        let body = Array(job.body.utf8)
        let signature = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(job.secret.utf8)))
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Parley-Webhook")
        request.headers.add(name: "X-Parley-Event", value: job.event)
        request.headers.add(name: "X-Parley-Delivery", value: job.id)
        request.headers.add(
            name: "X-Parley-Signature", value: "sha256=" + signature.map { String(format: "%02x", $0) }.joined())
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(Int64(settings.timeout)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let status = Int(response.status.code)
            return (200..<300).contains(status) ? .delivered(status: status) : retry(status, "answered \(status)")
        } catch {
            return retry(nil, "\(error)")
        }
    }
}
