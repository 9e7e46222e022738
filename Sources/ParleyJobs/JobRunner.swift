public import Logging
import ParleyHub
public import ServiceLifecycle
import Synchronization

/// Runs meeting pipelines in a task group of its own, as a Service. On graceful shutdown the
/// running pipelines are cancelled; events they would publish after that are dropped and their
/// meetings stay `processing`, so the next start resumes them (see `MeetingProcessor.recover`).
public final class JobRunner: Service {
    struct Job: Sendable {
        let meetingID: String
        let work: @Sendable () async -> Void
    }

    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation
    private struct State {
        var stopping = false
        var running: Set<String> = []
        /// Cancels a running job (its meeting was deleted).
        var cancellers: [String: Completion<Void>] = [:]
        var ended: [String: Completion<Void>] = [:]
    }
    private let state = Mutex(State())
    let logger: Logger

    public init(logger: Logger) {
        (jobs, continuation) = AsyncStream.makeStream()
        self.logger = logger
    }

    public var isStopping: Bool { state.withLock { $0.stopping } }
    public func isRunning(_ meetingID: String) -> Bool { state.withLock { $0.running.contains(meetingID) } }

    /// Queues a job; false when the server is stopping or the meeting already has one.
    public func submit(meetingID: String, _ work: @escaping @Sendable () async -> Void) -> Bool {
        let accepted = state.withLock { state in
            if state.stopping || state.running.contains(meetingID) { return false }
            state.running.insert(meetingID)
            state.cancellers[meetingID] = Completion()
            state.ended[meetingID] = Completion()
            return true
        }
        guard accepted else { return false }
        if case .terminated = continuation.yield(Job(meetingID: meetingID, work: work)) {
            finished(meetingID)
            return false
        }
        return true
    }

    /// Cancels the meeting's job, if one runs, and waits until it has ended.
    public func cancel(meetingID: String) async {
        let (canceller, ended) = state.withLock { ($0.cancellers[meetingID], $0.ended[meetingID]) }
        canceller?.complete(())
        await ended?.value
    }

    private func finished(_ meetingID: String) {
        let ended = state.withLock { state in
            state.running.remove(meetingID)
            state.cancellers[meetingID] = nil
            return state.ended.removeValue(forKey: meetingID)
        }
        ended?.complete(())
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await job in jobs {
                    group.addTask {
                        let canceller = self.state.withLock { $0.cancellers[job.meetingID] }
                        await cancelWhenGracefulShutdown {
                            await withTaskGroup(of: Void.self) { race in
                                race.addTask { await job.work() }
                                race.addTask { await canceller?.value }
                                await race.next()
                                race.cancelAll()
                                canceller?.complete(())
                            }
                        }
                        self.finished(job.meetingID)
                    }
                }
            }
        } onGracefulShutdown: {
            self.state.withLock { $0.stopping = true }
            self.continuation.finish()
        }
    }
}
