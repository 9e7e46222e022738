/// What goes wrong with a meeting people work on: it is not there, the user may not do this,
/// the edit conflicts, or what they sent is not acceptable. Domain words only: the server maps
/// each code to an HTTP status in one place (`MeetingError+HTTP.swift`).
struct MeetingError: Error, Hashable, Sendable, CustomStringConvertible {
    struct Code: Hashable, Sendable {
        private enum Value: Hashable { case notFound, forbidden, conflict, invalid(String) }
        private let value: Value
        /// The meeting, speaker or action item does not exist.
        static let notFound = Code(value: .notFound)
        /// The user may not do this to this meeting.
        static let forbidden = Code(value: .forbidden)
        /// The meeting changed in a way the request cannot go with.
        static let conflict = Code(value: .conflict)
        /// A value people gave is not acceptable; `field` names it (`invalid_name`, ...).
        static func invalid(_ field: String) -> Code { Code(value: .invalid(field)) }

        /// The stable code clients see (`not_found`, `invalid_name`, ...).
        var name: String {
            switch value {
            case .notFound: "not_found"
            case .forbidden: "forbidden"
            case .conflict: "conflict"
            case .invalid(let field): "invalid_\(field)"
            }
        }

        var isInvalid: Bool {
            if case .invalid = value { return true }
            return false
        }
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { message }

    static func notFound(_ message: String) -> Self { .init(.notFound, message) }
    static func forbidden(_ message: String) -> Self { .init(.forbidden, message) }
    static func conflict(_ message: String) -> Self { .init(.conflict, message) }
    static func invalid(_ field: String, _ message: String) -> Self { .init(.invalid(field), message) }
}
