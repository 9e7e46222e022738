// parley-load: the WebSocket load generator of the hub benchmark (benchmarks/hub.py).
// Real WebSocket clients (Hummingbird's WSClient on SwiftNIO), many per process. Talks to
// Parley and to the FastAPI peer alike: both send the same JSON events whose transcript text
// starts with `t<publish time in ns>`.
//
//   parley-load fanout    --ws URL --publish URL [--token T] --subscribers N --events M [--size S]
//   parley-load idle      --ws URL --connections N --hold SECONDS --pid PID
//   parley-load reconnect --ws URL --publish URL --clients N --events M
// Prints one JSON object with the results.

import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

struct Options {
    var values: [String: String] = [:]
    init(_ arguments: [String]) {
        var i = 0
        while i < arguments.count {
            if arguments[i].hasPrefix("--"), i + 1 < arguments.count {
                values[String(arguments[i].dropFirst(2))] = arguments[i + 1]
                i += 2
            } else {
                i += 1
            }
        }
    }
    func string(_ key: String) -> String {
        guard let value = values[key] else { fatalError("--\(key) is required") }
        return value
    }
    func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap { Int($0) } ?? fallback }
}

func nowNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// Finds `"offset":N` and `"text":"tNS` in a frame without a JSON parser.
func scan(_ buffer: ByteBuffer) -> (offset: Int, published: Int64?)? {
    let bytes = buffer.readableBytesView
    func number(after marker: [UInt8]) -> Int64? {
        guard let start = bytes.firstRange(of: marker)?.upperBound else { return nil }
        var value: Int64 = 0
        var index = start
        var digits = 0
        while index < bytes.endIndex, bytes[index] >= 48, bytes[index] <= 57 {
            value = value * 10 + Int64(bytes[index] - 48)
            index += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }
    guard let offset = number(after: Array(#""offset":"#.utf8)) else { return nil }
    return (Int(offset), number(after: Array(#""text":"t"#.utf8)))
}

final class Stats: Sendable {
    struct State {
        var latencies: [Int64] = []
        var received = 0
        var connected = 0
        var failed = 0
        var perClient: [Int: [Int]] = [:]
    }
    let state = Mutex(State())
}

func post(_ url: String, body: String, token: String?) async throws {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.body = .bytes(ByteBuffer(string: body))
    request.headers.add(name: "Content-Type", value: "application/json")
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
    let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
    guard response.status.code == 200 else {
        throw NSError(domain: "publish", code: 1, userInfo: [NSLocalizedDescriptionKey: text])
    }
}

func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

var logger = Logger(label: "parley-load")
logger.logLevel = .critical

/// One subscriber: connects, counts `connected`, then records every numbered event until it has
/// `expect` of them (or `stop` is signalled).
func subscriber(
    id: Int, url: String, stats: Stats, expect: Int, untilOffset: Int?, record: Bool,
    ready: @escaping @Sendable () -> Void
) async {
    var configuration = WebSocketClientConfiguration()
    configuration.maxFrameSize = 1 << 20
    configuration.autoPing = .disabled
    let announced = Atomic<Bool>(false)
    do {
        try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) {
            inbound, outbound, _ in
            stats.state.withLock { $0.connected += 1 }
            if !announced.exchange(true, ordering: .relaxed) { ready() }
            var seen = 0
            var offsets: [Int] = []
            for try await frame in inbound {
                guard frame.opcode == .text, let (offset, published) = scan(frame.data) else { continue }
                if frame.data.readableBytesView.firstRange(of: Array(#""type":"connected""#.utf8)) != nil { continue }
                let now = nowNanoseconds()
                seen += 1
                if record { offsets.append(offset) }
                stats.state.withLock { state in
                    state.received += 1
                    if let published { state.latencies.append(now - published) }
                }
                if seen >= expect || (untilOffset.map { offset >= $0 } ?? false) { break }
            }
            if record { stats.state.withLock { $0.perClient[id] = offsets } }
            try await outbound.close(.normalClosure, reason: nil)
        }
    } catch {
        stats.state.withLock { $0.failed += 1 }
        if !announced.exchange(true, ordering: .relaxed) { ready() }
    }
}

func cpuSeconds(pid: Int) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: ")").last!.split(separator: " ")
    // After the ")": state is field 0, utime is 11, stime is 12 (fields 14 and 15 of stat).
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (Double(fields[11])! + Double(fields[12])!) / ticks
}

func rssMegabytes(pid: Int) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ")[1])! / 1024
    }
    return 0
}

func percentile(_ sorted: [Int64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
}

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "help"
let options = Options(Array(arguments.dropFirst(2)))

/// Limits how many connection attempts are in flight, so 10,000 clients do not overflow the
/// server's accept backlog all at once.
final class Gate: Sendable {
    let pending = Atomic<Int>(0)
    func enter() async {
        while pending.load(ordering: .relaxed) >= 200 { try? await Task.sleep(for: .milliseconds(2)) }
        pending.add(1, ordering: .relaxed)
    }
    func leave() { pending.subtract(1, ordering: .relaxed) }
}

func waitConnected(_ stats: Stats, _ count: Int) async {
    while stats.state.withLock({ $0.connected + $0.failed }) < count { try? await Task.sleep(for: .milliseconds(10)) }
}

switch mode {
case "fanout":
    let subscribers = options.int("subscribers", 1000)
    let events = options.int("events", 1000)
    let pid = options.int("pid", 0)
    let stats = Stats()
    let ws = options.string("ws")
    var result: [String: Any] = [:]
    await withDiscardingTaskGroup { group in
        let gate = Gate()
        for id in 0..<subscribers {
            await gate.enter()
            group.addTask {
                await subscriber(
                    id: id, url: ws, stats: stats, expect: events, untilOffset: nil, record: false, ready: gate.leave)
            }
        }
        await waitConnected(stats, subscribers)
        let cpuBefore = cpuSeconds(pid: pid)
        let start = nowNanoseconds()
        do {
            try await post(
                options.string("publish"), body: #"{"count":\#(events),"size":\#(options.int("size", 120))}"#,
                token: options.values["token"])
        } catch {
            result["error"] = "\(error)"
        }
        let expected = subscribers * events
        let deadline = start + 120_000_000_000
        var last = -1
        var lastChange = nowNanoseconds()
        while nowNanoseconds() < deadline {
            let received = stats.state.withLock { $0.received }
            if received >= expected { break }
            if received != last {
                last = received
                lastChange = nowNanoseconds()
            } else if nowNanoseconds() - lastChange > 10_000_000_000 {
                break  // nothing for 10 s: count the rest as lost
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        let elapsed = Double(nowNanoseconds() - start) / 1e9
        let cpu = cpuSeconds(pid: pid) - cpuBefore
        let (received, latencies, connected) = stats.state.withLock {
            ($0.received, $0.latencies.sorted(), $0.connected)
        }
        result["subscribers"] = subscribers
        result["connected"] = connected
        result["events"] = events
        result["expected"] = expected
        result["received"] = received
        result["lost"] = expected - received
        result["seconds"] = elapsed
        result["messages_per_second"] = Double(received) / elapsed
        result["server_cpu_seconds"] = cpu
        result["server_cpu_us_per_message"] = received > 0 ? cpu / Double(received) * 1e6 : 0
        result["latency_ms"] = [
            "p50": percentile(latencies, 0.5), "p90": percentile(latencies, 0.9), "p99": percentile(latencies, 0.99),
            "max": percentile(latencies, 1.0),
        ]
        // A 1-in-N sample of latencies for the distribution plot.
        let step = max(1, latencies.count / 20000)
        result["latency_sample_ms"] = stride(from: 0, to: latencies.count, by: step).map { Double(latencies[$0]) / 1e6 }
        group.cancelAll()
    }
    emit(result)

case "idle":
    let count = options.int("connections", 10000)
    let pid = options.int("pid", 0)
    let hold = options.int("hold", 5)
    let stats = Stats()
    let ws = options.string("ws")
    let rssBefore = rssMegabytes(pid: pid)
    var result: [String: Any] = [:]
    let started = Date()
    await withDiscardingTaskGroup { group in
        let gate = Gate()
        let tokens = (options.values["tokens"] ?? "").split(separator: ",").map(String.init)
        for id in 0..<count {
            await gate.enter()
            // One token per user, round robin: the per-user connection cap stays meaningful.
            let url = tokens.isEmpty ? ws : ws + "?token=" + tokens[id % tokens.count]
            group.addTask {
                await subscriber(
                    id: id, url: url, stats: stats, expect: Int.max, untilOffset: nil, record: false, ready: gate.leave)
            }
        }
        await waitConnected(stats, count)
        let connectSeconds = Date().timeIntervalSince(started)
        try? await Task.sleep(for: .seconds(hold))
        let (connected, failed) = stats.state.withLock { ($0.connected, $0.failed) }
        result["connections"] = count
        result["connected"] = connected
        result["failed"] = failed
        result["connect_seconds"] = connectSeconds
        result["server_rss_mb_before"] = rssBefore
        result["server_rss_mb"] = rssMegabytes(pid: pid)
        group.cancelAll()
    }
    emit(result)

case "reconnect":
    // N clients watch; all disconnect; `events` happen; all reconnect at once with since=<last
    // offset seen> and must receive exactly the missed events, in order.
    let clients = options.int("clients", 1000)
    let events = options.int("events", 100)
    let ws = options.string("ws")
    let stats = Stats()
    // Phase 1: everyone sees `events` events live, then leaves.
    await withDiscardingTaskGroup { group in
        let gate = Gate()
        for id in 0..<clients {
            await gate.enter()
            group.addTask {
                await subscriber(
                    id: id, url: ws, stats: stats, expect: events, untilOffset: nil, record: true, ready: gate.leave)
            }
        }
        await waitConnected(stats, clients)
        try? await post(
            options.string("publish"), body: #"{"count":\#(events),"size":60}"#, token: options.values["token"])
    }
    let firstSeen = stats.state.withLock { $0.perClient }
    let lastSeen = firstSeen.mapValues { $0.last ?? 0 }
    // Phase 2: missed events happen while nobody watches.
    try? await post(options.string("publish"), body: #"{"count":\#(events),"size":60}"#, token: options.values["token"])
    let target = (lastSeen.values.max() ?? 0) + events
    // Phase 3: everyone reconnects at once with since.
    let again = Stats()
    let started = Date()
    await withDiscardingTaskGroup { group in
        for id in 0..<clients {
            group.addTask {
                let since = lastSeen[id] ?? 0
                await subscriber(
                    id: id, url: ws + "&since=\(since)", stats: again, expect: Int.max, untilOffset: target,
                    record: true,
                    ready: {})
            }
        }
    }
    let seconds = Date().timeIntervalSince(started)
    let replayed = again.state.withLock { $0.perClient }
    var complete = 0
    for id in 0..<clients {
        let since = lastSeen[id] ?? 0
        if replayed[id] == Array((since + 1)...target) { complete += 1 }
    }
    emit([
        "clients": clients, "missed_events": events, "recovered_completely": complete, "seconds": seconds,
        "failed": again.state.withLock { $0.failed },
    ])

default:
    print("usage: parley-load fanout|idle|reconnect --ws URL ...")
}
