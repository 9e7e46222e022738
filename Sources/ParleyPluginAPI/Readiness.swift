/// Whether a backend can run now, and in words why or why not.
public enum Readiness: Sendable, Hashable, CustomStringConvertible {
    /// Ready; the detail says what will be used ("model tiny.en at /…, python /…").
    case ready(String)
    /// Not ready; the reason says what is missing and how to fix it.
    case notReady(String)

    public var isReady: Bool { if case .ready = self { true } else { false } }

    public var description: String {
        switch self {
        case .ready(let detail): "ready: \(detail)"
        case .notReady(let reason): "not ready: \(reason)"
        }
    }
}
