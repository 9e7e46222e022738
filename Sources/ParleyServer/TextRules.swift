import Foundation

/// How the API measures the text people send, exactly as its OpenAPI document says (JSON
/// Schema's `maxLength` counts Unicode code points; `pattern: "\S"` asks for a character
/// other than white space), so a request the document calls valid is accepted and one it calls
/// invalid is refused. What is kept is the text without white space at its ends.
enum TextRules {
    /// `text` if it is 1 to `max` code points and not only white space, trimmed; nil otherwise.
    static func required(_ text: String, max: Int) -> String? {
        guard (1...max).contains(text.unicodeScalars.count),
            text.unicodeScalars.contains(where: { !CharacterSet.whitespacesAndNewlines.contains($0) })
        else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether `text` is at most `max` code points.
    static func fits(_ text: String, max: Int) -> Bool { text.unicodeScalars.count <= max }
}
