import Foundation
import Logging
import ParleyStore
import ServiceLifecycle
import Synchronization

/// Takes queued meetings from the store's job queue and runs them, as many at a time as
/// `server.jobs` allows: uploads another node received without processing them, and meetings
/// whose worker stopped (its lease ran out). Wakes when the store announces a job, and polls
/// every `pollInterval` besides (a lost announcement delays a job, never loses it).
final class JobQueue: Service {
    let store: any Store
    let meetings: MeetingService
    let runner: JobRunner
    let concurrency: Int
    let pollInterval: Duration
    let logger: Logger
    /// Jobs this queue claimed that still run (a node's own uploads are not counted).
    private let active = Atomic<Int>(0)
    private let wake: AsyncStream<Void>
    private let waker: AsyncStream<Void>.Continuation

    init(store: any Store, meetings: MeetingService, runner: JobRunner, settings: ServerSettings, logger: Logger) {
        self.store = store
        self.meetings = meetings
        self.runner = runner
        concurrency = settings.jobs
        pollInterval = .milliseconds(Int(settings.jobPollInterval * 1000))
        self.logger = logger
        (wake, waker) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Looks for work now (a job was queued or released, or a running one ended).
    func poke() { waker.yield() }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while (try? await Task.sleep(for: self.pollInterval)) != nil { self.poke() }
            }
            poke()
            for await _ in wake.cancelOnGracefulShutdown() {
                await claimWhileRoom()
            }
            group.cancelAll()
        }
    }

    private func claimWhileRoom() async {
        while !runner.isStopping && active.load(ordering: .relaxed) < concurrency {
            let now = Date()
            let job: JobRecord?
            do {
                job = try await store.claimJob(
                    owner: meetings.node, until: now.addingTimeInterval(meetings.settings.jobLease), now: now)
            } catch {
                logger.warning("cannot read the job queue", metadata: ["error": "\(store.describe(error))"])
                return
            }
            guard let job else { return }
            logger.info(
                "job claimed", metadata: ["meeting.id": "\(job.meetingID)", "attempt": "\(job.attempts)"])
            active.add(1, ordering: .relaxed)
            let accepted = runner.submit(meetingID: job.meetingID) {
                await self.meetings.runClaimed(job)
                self.active.subtract(1, ordering: .relaxed)
                self.poke()
            }
            if !accepted {
                active.subtract(1, ordering: .relaxed)
                // Running here already (a lease this node lost and took back), or stopping.
                _ = try? await store.releaseJob(meetingID: job.meetingID, owner: meetings.node)
                return
            }
        }
    }
}

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
