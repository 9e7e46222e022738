public import Logging

/// What a plugin gets from the engine for one meeting.
public struct PluginContext: Sendable {
    /// Carries the meeting id in its metadata.
    public var logger: Logger
    /// A directory the plugin may write temporary files into; the engine removes it.
    public var scratchDirectory: String

    public init(logger: Logger, scratchDirectory: String) {
        self.logger = logger
        self.scratchDirectory = scratchDirectory
    }
}
