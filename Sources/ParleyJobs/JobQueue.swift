import Foundation
public import Logging
import ParleyHub
import ParleyStore
public import ServiceLifecycle
import Synchronization

/// Takes queued meetings from the store's job queue and runs them, as many at a time as
/// `server.jobs` allows: uploads another node received without processing them, and meetings
/// whose worker stopped (its lease ran out). Wakes when the store announces a job (through the
/// hub), and polls every `pollInterval` besides (a lost announcement delays a job, never loses it).
public final class JobQueue: Service {
    let processor: MeetingProcessor
    let concurrency: Int
    let pollInterval: Duration
    let logger: Logger
    /// Jobs this queue claimed that still run (a node's own uploads are not counted).
    private let active = Atomic<Int>(0)
    private let wake: AsyncStream<Void>
    private let waker: AsyncStream<Void>.Continuation

    init(processor: MeetingProcessor, logger: Logger) {
        self.processor = processor
        concurrency = processor.settings.jobs
        pollInterval = .milliseconds(Int(processor.settings.jobPollInterval * 1000))
        self.logger = logger
        (wake, waker) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Looks for work now (a job was queued or released, or a running one ended).
    public func poke() { waker.yield() }

    var store: any Store { processor.store }
    var runner: JobRunner { processor.runner }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while (try? await Task.sleep(for: self.pollInterval)) != nil { self.poke() }
            }
            group.addTask {
                for await _ in self.processor.hub.jobsChanged { self.poke() }
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
                    owner: processor.node, until: now.addingTimeInterval(processor.settings.jobLease), now: now)
            } catch {
                logger.warning("cannot read the job queue", metadata: ["error": "\(store.describe(error))"])
                return
            }
            guard let job else { return }
            logger.info(
                "job claimed", metadata: ["meeting.id": "\(job.meetingID)", "attempt": "\(job.attempts)"])
            active.add(1, ordering: .relaxed)
            let accepted = runner.submit(meetingID: job.meetingID) {
                await self.processor.runClaimed(job)
                self.active.subtract(1, ordering: .relaxed)
                self.poke()
            }
            if !accepted {
                active.subtract(1, ordering: .relaxed)
                // Running here already (a lease this node lost and took back), or stopping.
                _ = try? await store.releaseJob(meetingID: job.meetingID, owner: processor.node)
                return
            }
        }
    }
}
