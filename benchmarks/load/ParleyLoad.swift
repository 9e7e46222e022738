import ArgumentParser
import Foundation
import NIOCore
import Synchronization

/// The hub benchmark's load: `fanout` (subscribers receive a burst), `idle` (connections held
/// open, the server's memory measured), `reconnect` (clients come back with `since`). Each
/// prints one JSON object with the results.
@main
struct ParleyLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-load", abstract: "WebSocket load for the hub benchmark (benchmarks/hub.py).",
        subcommands: [Fanout.self, Idle.self, Reconnect.self])
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscribers watch; a burst of events is published.")

    @Option(help: "WebSocket URLs, comma-separated (several nodes of one cluster: subscribers in turn).")
    var ws: String
    @Option(help: "The URL that publishes the burst.")
    var publish: String
    @Option(help: "Bearer token for the publish request.")
    var token: String?
    @Option var subscribers = 1000
    @Option var events = 1000
    @Option(help: "Characters of filler text per event.")
    var size = 120
    @Option(name: .customLong("interval-us"), help: "Microseconds between events (0: as fast as they go).")
    var intervalUs = 0
    @Option(help: "Server process ids, comma-separated (their CPU is summed).")
    var pid: String
    @Flag(help: "Offer permessage-deflate (no context takeover); counts bytes on the wire either way.")
    var deflate = false
    @Flag(help: "Publish events as the pipeline makes them (a sentence, every word timed) instead of filler.")
    var words = false

    func run() async throws {
        // Several servers (nodes of one cluster): `--ws` and `--pid` take comma-separated lists;
        // subscribers are spread over the addresses in turn, CPU is summed over the processes.
        let pids = pid.split(separator: ",").compactMap { Int($0) }
        let stats = Stats()
        let addresses = ws.split(separator: ",").map(String.init)
        var result: [String: Any] = [:]
        let clients = await connect(
            (0..<subscribers).map { addresses[$0 % addresses.count] }, stats: stats, expect: events, untilOffset: nil,
            record: false, deflate: deflate)
        try? await Task.sleep(for: .milliseconds(300))  // let the presence messages settle
        let wireBefore = stats.wireBytes.load(ordering: .relaxed)
        let payloadBefore = stats.payloadBytes.load(ordering: .relaxed)
        func serverCPU() -> Double { pids.reduce(0) { $0 + cpuSeconds(pid: $1) } }
        let cpuBefore = serverCPU()
        let ownCPUBefore = cpuSeconds(pid: Int(getpid()))
        let start = nowNanoseconds()
        do {
            try await post(
                publish,
                body:
                    #"{"count":\#(events),"size":\#(size),"interval_us":\#(intervalUs),"words":\#(words)}"#,
                token: token)
        } catch {
            result["error"] = "\(error)"
        }
        // The publish request returns once every event was handed over (the seed: sent to everyone).
        result["publish_seconds"] = Double(nowNanoseconds() - start) / 1e9
        let expected = subscribers * events
        var last = -1
        var lastChange = nowNanoseconds()
        while true {
            let received = stats.received.load(ordering: .relaxed)
            if received >= expected { break }
            if received != last {
                last = received
                lastChange = nowNanoseconds()
            } else if nowNanoseconds() - lastChange > 10_000_000_000 {
                break  // nothing for 10 s: the rest is lost
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
        let elapsed = Double(nowNanoseconds() - start) / 1e9
        let cpu = serverCPU() - cpuBefore
        result["generator_cpu_seconds"] = cpuSeconds(pid: Int(getpid())) - ownCPUBefore
        let received = stats.received.load(ordering: .relaxed)
        let perClient = await collect(clients) { $0.latencies }
        let latencies = perClient.flatMap { $0 }.sorted()
        if addresses.count > 1 {
            // Latency by the address the subscribers used (client i used address i % count).
            result["latency_ms_by_ws"] = addresses.indices.map { index -> [String: Double] in
                let mine = perClient.enumerated().filter { $0.offset % addresses.count == index }.flatMap(\.element)
                    .sorted()
                return ["p50": percentile(mine, 0.5), "p99": percentile(mine, 0.99), "max": percentile(mine, 1.0)]
            }
        }
        for (_, channel) in clients { channel.close(promise: nil) }
        result["subscribers"] = subscribers
        result["connected"] = stats.connected.load(ordering: .relaxed)
        result["events"] = events
        result["interval_us"] = intervalUs
        result["expected"] = expected
        result["received"] = received
        result["lost"] = expected - received
        result["seconds"] = elapsed
        result["messages_per_second"] = Double(received) / elapsed
        result["server_cpu_seconds"] = cpu
        // Bytes over the burst (the frames of the events, and keepalives if one fell in it).
        result["deflate_offered"] = deflate
        result["deflate_negotiated"] = stats.deflated.load(ordering: .relaxed)
        result["wire_bytes"] = stats.wireBytes.load(ordering: .relaxed) - wireBefore
        result["payload_bytes"] = stats.payloadBytes.load(ordering: .relaxed) - payloadBefore
        result["server_cpu_us_per_message"] = received > 0 ? cpu / Double(received) * 1e6 : 0
        result["latency_ms"] = [
            "p50": percentile(latencies, 0.5), "p90": percentile(latencies, 0.9), "p99": percentile(latencies, 0.99),
            "max": percentile(latencies, 1.0),
        ]
        // A sample of the latencies for the distribution plot.
        let step = max(1, latencies.count / 20000)
        result["latency_sample_ms"] = stride(from: 0, to: latencies.count, by: step).map { Double(latencies[$0]) / 1e6 }
        emit(result)
    }
}

struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Connections held open; the server's memory measured.")

    @Option var ws: String
    @Option(help: "Tokens, comma-separated, one per user, used in turn.")
    var tokens: String?
    @Option var connections = 10000
    @Option(help: "Seconds to hold the connections.")
    var hold = 5
    @Option(help: "The server's process id.")
    var pid = 0

    func run() async throws {
        let count = connections
        let stats = Stats()
        let tokenList = (tokens ?? "").split(separator: ",").map(String.init)
        // One token per user, round robin: the per-user connection cap stays meaningful.
        let urls = (0..<count).map { tokenList.isEmpty ? ws : ws + "?token=" + tokenList[$0 % tokenList.count] }
        let rssBefore = rssMegabytes(pid: pid)
        let started = Date()
        let clients = await connect(urls, stats: stats, expect: Int.max, untilOffset: nil, record: false)
        let connectSeconds = Date().timeIntervalSince(started)
        try? await Task.sleep(for: .seconds(hold))
        var result: [String: Any] = [:]
        result["connections"] = count
        result["connected"] = stats.connected.load(ordering: .relaxed)
        result["failed"] = stats.failed.load(ordering: .relaxed)
        result["still_open"] = clients.filter { $0.1.isActive }.count
        result["connect_seconds"] = connectSeconds
        result["server_rss_mb_before"] = rssBefore
        result["server_rss_mb"] = rssMegabytes(pid: pid)
        for (_, channel) in clients { channel.close(promise: nil) }
        emit(result)
    }
}

struct Reconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Clients watch, all disconnect, events happen, all reconnect at once with since=<last seen>.")

    @Option var ws: String
    @Option var publish: String
    @Option var token: String?
    @Option var clients = 1000
    @Option(help: "Events published while they are away.")
    var events = 100

    func run() async throws {
        // N clients watch; all disconnect; `events` more happen; all reconnect at once with
        // since=<last offset seen> and must receive exactly the missed events, in order.
        let count = clients
        let stats = Stats()
        let first = await connect(
            Array(repeating: ws, count: count), stats: stats, expect: events, untilOffset: nil, record: true)
        try? await post(publish, body: #"{"count":\#(events),"size":60}"#, token: token)
        let waitStart = Date()
        while stats.closed.load(ordering: .relaxed) < count, Date().timeIntervalSince(waitStart) < 60 {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let lastSeen = await collect(first) { $0.offsets.last ?? 0 }
        try? await post(publish, body: #"{"count":\#(events),"size":60}"#, token: token)
        let target = (lastSeen.max() ?? 0) + events
        let again = Stats()
        let started = Date()
        let second = await connect(
            lastSeen.map { ws + "&since=\($0)" }, stats: again, expect: Int.max, untilOffset: target, record: true)
        while again.closed.load(ordering: .relaxed) + again.failed.load(ordering: .relaxed) < count,
            Date().timeIntervalSince(started) < 120
        {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let seconds = Date().timeIntervalSince(started)
        let replayed = await collect(second) { $0.offsets }
        var complete = 0
        for (index, offsets) in replayed.enumerated() where index < lastSeen.count {
            if offsets == Array((lastSeen[index] + 1)...target) { complete += 1 }
        }
        emit([
            "clients": count, "missed_events": events, "recovered_completely": complete, "seconds": seconds,
            "failed": again.failed.load(ordering: .relaxed),
        ])
    }
}
