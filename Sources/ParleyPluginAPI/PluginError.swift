/// The one error type of the plugin API. Callers compare ``code``; ``message`` is for people.
public struct PluginError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case notReady, badSetting, engine, protocolViolation, timeout, unavailable }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// The backend cannot run: model missing, executable not found, server unreachable.
        public static let notReady = Code(.notReady)
        /// A configuration value is missing or malformed.
        public static let badSetting = Code(.badSetting)
        /// The engine ran and failed on this input.
        public static let engine = Code(.engine)
        /// A worker or server answered something the protocol does not allow.
        public static let protocolViolation = Code(.protocolViolation)
        public static let timeout = Code(.timeout)
        /// A worker that was running is gone (it exited or was stopped).
        public static let unavailable = Code(.unavailable)
        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func badSetting(_ key: String, _ problem: String) -> Self {
        .init(.badSetting, "setting '\(key)': \(problem)")
    }
}
