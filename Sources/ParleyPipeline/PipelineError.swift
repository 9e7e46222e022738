public import ParleyEvents

/// The one error type of the pipeline module for what goes wrong before a meeting runs
/// (configuration, plugin choice). Failures during a meeting become ``PipelineFailure`` events.
public struct PipelineError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case unknownPlugin, badConfiguration, notReady, export }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public static let unknownPlugin = Code(.unknownPlugin)
        public static let badConfiguration = Code(.badConfiguration)
        public static let notReady = Code(.notReady)
        public static let export = Code(.export)
        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func unknownPlugin(_ kind: String, _ name: String, known: [String]) -> Self {
        .init(.unknownPlugin, "no \(kind) named '\(name)' (registered: \(known.joined(separator: ", ")))")
    }
}
