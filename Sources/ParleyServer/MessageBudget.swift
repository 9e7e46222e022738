import NIOCore

/// What one WebSocket client may send: a token bucket of `rate` messages a second with bursts
/// of `burst`. A message past it is refused (the client is told once, with an `error` message);
/// a client that sends `burst` more while refused is closed (1008). Kept per connection on its
/// event loop, so one client's flood costs only its own connection: the hub's fan-out to
/// everyone else never waits on a client's reads.
struct MessageBudget {
    enum Verdict: Equatable {
        case allowed
        /// Refused; `first` when it is the first since the budget last allowed one.
        case refused(first: Bool)
        /// Refused again and again: close the connection (said once; every message after it
        /// is refused).
        case exhausted
    }

    let rate: Double
    let burst: Int
    private var tokens: Double
    private var last: NIODeadline
    private var refused = 0
    private var exhausted = false

    init(rate: Double, burst: Int, now: NIODeadline = .now()) {
        self.rate = rate
        self.burst = burst
        tokens = Double(burst)
        last = now
    }

    mutating func take(now: NIODeadline = .now()) -> Verdict {
        if exhausted { return .refused(first: false) }
        let elapsed = Double(max(0, (now - last).nanoseconds)) / 1e9
        tokens = min(Double(burst), tokens + elapsed * rate)
        last = now
        if tokens >= 1 {
            tokens -= 1
            refused = 0
            return .allowed
        }
        refused += 1
        exhausted = refused > burst
        return exhausted ? .exhausted : .refused(first: refused == 1)
    }
}
