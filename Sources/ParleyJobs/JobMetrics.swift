import Metrics
import ParleyEvents

/// Meetings completed and failed, and how long each stage took (from the pipeline's own
/// `completed` status events), wherever meetings run.
struct JobMetrics: Sendable {
    let meetingsCompleted = Counter(label: "parley_meetings_total", dimensions: [("result", "completed")])
    let meetingsFailed = Counter(label: "parley_meetings_total", dimensions: [("result", "failed")])

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
