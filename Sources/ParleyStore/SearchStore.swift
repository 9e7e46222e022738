public import Foundation

/// The search index: what was said and found in each meeting (transcript segments, summary
/// points, decisions, action items) as the meeting's log left it, ranked by relevance
/// (SQLite FTS5 with bm25; PostgreSQL full-text search with ts_rank).
public protocol SearchStore: Sendable {
    /// Replaces the meeting's documents with `documents`, as of `offset` of the log `epoch`;
    /// false (nothing written) when the index already reflects that offset or a later one of
    /// the same log, or the meeting's log is no longer `epoch` (or the meeting is gone).
    /// `readers` are the accounts that may see the meeting (its owner and members): a search
    /// finds the documents through them. The meeting's action items are replaced with
    /// `actionItems` in the same write.
    func replaceSearchDocuments(
        meetingID: String, epoch: String, offset: Int, readers: [String], documents: [SearchDocument],
        actionItems: [IndexedActionItem]
    ) async throws -> Bool
    /// Forgets which offset the meeting's documents reflect, so the next rewrite happens
    /// whatever its offset (the meeting's readers changed).
    func forgetSearchPosition(meetingID: String) async throws
    /// Meetings whose log has events the index does not reflect yet (at most `limit`).
    func meetingsBehindSearch(limit: Int) async throws -> [String]
    /// The best hits for the query among the meetings `query.userID` owns or is a member of.
    func search(_ query: SearchQuery) async throws -> [SearchHit]
    /// Action items across the meetings `query.userID` owns or is a member of: soonest due
    /// first (those without a date last), then newest meeting first.
    func actionItems(_ query: ActionItemQuery) async throws -> [ActionItemHit]
}

/// An action item as the index keeps it, beside its meeting's documents.
public struct IndexedActionItem: Sendable, Hashable {
    public var item: Int
    public var owner: String?
    public var assignee: String?
    public var task: String
    public var due: String?
    /// `YYYY-MM-DD`, when the due phrase names a day (``DueDate``).
    public var dueDate: String?
    public var done: Bool
    public var time: Double

    public init(
        item: Int, owner: String?, assignee: String?, task: String, due: String?, dueDate: String?, done: Bool,
        time: Double
    ) {
        self.item = item
        self.owner = owner
        self.assignee = assignee
        self.task = task
        self.due = due
        self.dueDate = dueDate
        self.done = done
        self.time = time
    }

    /// How a name is compared: any case, dots, dashes and underscores as spaces ("dana.scully"
    /// is "Dana Scully").
    public static func nameKey(_ name: String) -> String {
        name.lowercased().split { $0 == " " || $0 == "." || $0 == "_" || $0 == "-" }.joined(separator: " ")
    }
}

/// Whose action items, and which.
public struct ActionItemQuery: Sendable {
    public var userID: String
    /// Items assigned to this account, or whose owner is called one of `names` (name keys);
    /// nil: every item of the meetings the user may see.
    public var mine: (username: String, names: [String])?
    /// true: not done; false: done; nil: both.
    public var open: Bool?
    public var limit: Int

    public init(userID: String, mine: (username: String, names: [String])?, open: Bool?, limit: Int = 500) {
        self.userID = userID
        self.mine = mine
        self.open = open
        self.limit = limit
    }
}

/// An action item with its meeting.
public struct ActionItemHit: Sendable, Hashable {
    public var meetingID: String
    public var title: String
    public var createdAt: Date
    public var item: IndexedActionItem

    public init(meetingID: String, title: String, createdAt: Date, item: IndexedActionItem) {
        self.meetingID = meetingID
        self.title = title
        self.createdAt = createdAt
        self.item = item
    }
}

/// One searchable thing of a meeting.
public struct SearchDocument: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case segment, summary, decision
        case actionItem = "action_item"
    }

    public var kind: Kind
    /// The segment's or action item's id; the point's or decision's index.
    public var item: Int
    /// Who said it (a segment), or whose it is (an action item), by the name shown.
    public var speaker: String?
    /// Seconds into the meeting, where known.
    public var start: Double?
    public var text: String

    public init(kind: Kind, item: Int, speaker: String?, start: Double?, text: String) {
        self.kind = kind
        self.item = item
        self.speaker = speaker
        self.start = start
        self.text = text
    }
}

/// What to search for, and where.
public struct SearchQuery: Sendable, Hashable {
    /// The words; each must occur (stemmed: "deciding" finds "decided").
    public var words: [String]
    public var userID: String
    /// Only what this speaker said or owns (the name shown, any case).
    public var speaker: String?
    /// Only meetings created at or after `from`, and before `to`.
    public var from: Date?
    public var to: Date?
    public var meetingID: String?
    public var limit: Int
    public var offset: Int

    public init(
        words: [String], userID: String, speaker: String? = nil, from: Date? = nil, to: Date? = nil,
        meetingID: String? = nil, limit: Int = 20, offset: Int = 0
    ) {
        self.words = words
        self.userID = userID
        self.speaker = speaker
        self.from = from
        self.to = to
        self.meetingID = meetingID
        self.limit = limit
        self.offset = offset
    }

    /// The words of a search box's text: letters and digits, lower-cased, at most 16 of them.
    public static func words(of text: String) -> [String] {
        Array(
            text.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init).prefix(16))
    }
}

/// A document the query matched.
public struct SearchHit: Sendable, Hashable {
    /// Around the matching words of `snippet`: characters no text holds (Unicode private use).
    public static let markStart: Character = "\u{E000}"
    public static let markEnd: Character = "\u{E001}"

    public var meetingID: String
    public var title: String
    public var createdAt: Date
    public var kind: SearchDocument.Kind
    public var item: Int
    public var speaker: String?
    public var start: Double?
    /// The words around the match, matching words between `markStart` and `markEnd`.
    public var snippet: String
    /// Higher is better (comparable within one answer only).
    public var score: Double

    public init(
        meetingID: String, title: String, createdAt: Date, kind: SearchDocument.Kind, item: Int, speaker: String?,
        start: Double?, snippet: String, score: Double
    ) {
        self.meetingID = meetingID
        self.title = title
        self.createdAt = createdAt
        self.kind = kind
        self.item = item
        self.speaker = speaker
        self.start = start
        self.snippet = snippet
        self.score = score
    }
}
