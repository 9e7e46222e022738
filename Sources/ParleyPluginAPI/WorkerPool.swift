import Logging
import Synchronization

/// Idle workers kept between meetings, so a batch of short meetings does not pay a model load
/// per meeting. A session takes a worker (or starts one) and gives it back when it closes
/// cleanly; a worker that failed, was cancelled or is beyond ``capacity`` is stopped instead.
/// Workers left idle when Parley exits see their stdin close and exit.
public final class WorkerPool: Sendable {
    private struct Idle {
        var worker: SubprocessWorker
        var handshake: WorkerHandshake
    }

    public let capacity: Int
    private let idle = Mutex<[Idle]>([])

    public init(capacity: Int = 4) { self.capacity = capacity }

    /// Idle workers are told to exit (their stdin closes) when the pool goes.
    deinit {
        for entry in idle.withLock({ $0 }) { entry.worker.closeInput() }
    }

    /// An idle worker started with `launch` from `pool`, or a new one after its `hello` handshake.
    static func checkOut(
        from pool: WorkerPool?, launch: SubprocessWorker.Launch, displayName: String, logger: Logger,
        startTimeout: Duration
    ) async throws -> (SubprocessWorker, WorkerHandshake) {
        if let (worker, handshake) = pool?.take(launch) {
            logger.debug("worker reused", metadata: ["worker": "\(displayName)"])
            return (worker, handshake)
        }
        let worker = SubprocessWorker(launch: launch, displayName: displayName, logger: logger)
        return (worker, try await worker.start(handshake: WorkerHandshake.self, timeout: startTimeout))
    }

    /// An idle worker started with `launch`, if there is one.
    func take(_ launch: SubprocessWorker.Launch) -> (SubprocessWorker, WorkerHandshake)? {
        while let found = idle.withLock({ list -> Idle? in
            guard let index = list.firstIndex(where: { $0.worker.launch == launch }) else { return nil }
            return list.remove(at: index)
        }) {
            if found.worker.isHealthy { return (found.worker, found.handshake) }
        }
        return nil
    }

    /// Keeps a healthy worker for the next meeting, or stops it.
    func give(_ worker: SubprocessWorker, handshake: WorkerHandshake) async {
        let kept =
            worker.isHealthy
            && idle.withLock { list in
                guard list.count < capacity else { return false }
                list.append(Idle(worker: worker, handshake: handshake))
                return true
            }
        if !kept { await worker.stop() }
    }
}
