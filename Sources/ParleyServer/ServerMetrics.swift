import Metrics

/// The server's own metrics (the hub counts connections and deliveries; the job processor
/// meetings and stage durations; Hummingbird's MetricsMiddleware requests).
struct ServerMetrics: Sendable {
    let uploadBytes = Counter(label: "parley_upload_bytes_total")
}
