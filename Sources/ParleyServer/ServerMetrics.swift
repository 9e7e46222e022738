import Metrics
import ParleyPipeline

/// The server's own metrics (the hub counts connections and deliveries; Hummingbird's
/// MetricsMiddleware counts requests).
struct ServerMetrics: Sendable {
    let uploadBytes = Counter(label: "parley_upload_bytes_total")
    let meetingsCompleted = Counter(label: "parley_meetings_total", dimensions: [("result", "completed")])
    let meetingsFailed = Counter(label: "parley_meetings_total", dimensions: [("result", "failed")])

    /// Stage durations come from the pipeline's own `completed` status events.
    func observe(_ data: EventData) {
        guard case .status(let status) = data else { return }
        switch (status.stage, status.state) {
        case (.completed, _): meetingsCompleted.increment()
        case (.failed, _): meetingsFailed.increment()
        case (_, .completed):
            if let elapsed = status.elapsed {
                Timer(label: "parley_stage_duration_seconds", dimensions: [("stage", status.stage.rawValue)])
                    .recordSeconds(elapsed)
            }
        default: break
        }
    }
}
