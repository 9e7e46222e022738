import Metrics

/// The server's own metrics (the hub counts connections and deliveries; the job processor
/// meetings and stage durations; Hummingbird's MetricsMiddleware requests).
struct ServerMetrics: Sendable {
    let uploadBytes = Counter(label: "parley_upload_bytes_total")
}

/// What the watchers' sockets write: frame bytes as they go on the wire (after compression),
/// and how many messages went compressed.
enum SocketMetrics {
    static let bytesSent = Counter(label: "parley_ws_bytes_sent_total")
    static let compressedMessages = Counter(label: "parley_ws_messages_compressed_total")
}
