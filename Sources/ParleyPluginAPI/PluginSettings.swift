/// The settings of one plugin: the keys of its section in the configuration file
/// (`[transcriber.whisper]`), overridden by environment variables and command-line flags.
/// Values are kept as text; the typed accessors say what is wrong with a bad one.
public struct PluginSettings: Sendable, Hashable {
    public var values: [String: String]
    /// Where the settings section lives, used in messages: "transcriber.whisper".
    public var section: String

    public init(_ values: [String: String] = [:], section: String = "") {
        self.values = values
        self.section = section
    }

    private func qualified(_ key: String) -> String { section.isEmpty ? key : "\(section).\(key)" }

    public func string(_ key: String) -> String? {
        guard let value = values[key], !value.isEmpty else { return nil }
        return value
    }

    public func string(_ key: String, default fallback: String) -> String { string(key) ?? fallback }

    public func double(_ key: String, default fallback: Double) throws(PluginError) -> Double {
        guard let text = string(key) else { return fallback }
        guard let value = Double(text), value.isFinite else {
            throw .badSetting(qualified(key), "'\(text)' is not a number")
        }
        return value
    }

    public func int(_ key: String, default fallback: Int) throws(PluginError) -> Int {
        guard let text = string(key) else { return fallback }
        guard let value = Int(text) else { throw .badSetting(qualified(key), "'\(text)' is not a whole number") }
        return value
    }

    public func bool(_ key: String, default fallback: Bool) throws(PluginError) -> Bool {
        guard let text = string(key)?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw .badSetting(qualified(key), "'\(text)' is not true or false")
        }
    }
}
