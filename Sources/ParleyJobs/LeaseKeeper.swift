import Foundation
import Logging
import ParleyStore

/// Renews a job's lease every third of its length while the job runs; returns true when the
/// lease is lost (another process took the job over, or the meeting was deleted) or could not
/// be renewed before it ran out, false when cancelled (the job ended).
func keepLease(
    meetingID: String, owner: String, lease: TimeInterval, store: any Store, logger: Logger
) async -> Bool {
    var expires = Date().addingTimeInterval(lease)
    while (try? await Task.sleep(for: .milliseconds(Int(lease * 1000 / 3)))) != nil {
        let until = Date().addingTimeInterval(lease)
        do {
            guard try await store.renewJob(meetingID: meetingID, owner: owner, until: until) else {
                logger.warning(
                    "job lease lost: another process has the meeting", metadata: ["meeting.id": "\(meetingID)"])
                return true
            }
            expires = until
        } catch {
            logger.warning(
                "cannot renew the job lease",
                metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
            if Date() >= expires {
                logger.error("job lease ran out; stopping the job", metadata: ["meeting.id": "\(meetingID)"])
                return true
            }
        }
    }
    return false
}
