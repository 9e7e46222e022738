import Foundation
import ParleyPluginAPI

/// The program a `command` plugin runs: its path, then its arguments, separated by spaces.
struct CommandProgram: Sendable {
    let words: [String]
    /// The setting it comes from, for messages: "transcriber.command.command".
    let setting: String

    init(_ text: String?, setting: String) {
        words = (text ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        self.setting = setting
    }

    /// The program's full path: as given when it has a slash, else searched in PATH.
    func executable() -> String? {
        guard let program = words.first else { return nil }
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    func readiness() -> Readiness {
        guard let program = words.first else { return .notReady("command: no program configured (set \(setting))") }
        guard let path = executable() else {
            return .notReady("command: '\(program)' is not an executable file or not in PATH")
        }
        return .ready("\(([path] + words.dropFirst()).joined(separator: " "))")
    }

    /// How to start it, or why it cannot be.
    func launch() throws(PluginError) -> (SubprocessWorker.Launch, displayName: String) {
        if case .notReady(let reason) = readiness() { throw PluginError(.notReady, reason) }
        guard let path = executable() else { throw PluginError(.notReady, "command: no program") }
        return (
            .init(executable: path, arguments: Array(words.dropFirst())),
            "command '\((path as NSString).lastPathComponent)'"
        )
    }
}
