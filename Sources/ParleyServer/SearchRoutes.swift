import Foundation
import Hummingbird
import ParleyEvents
import ParleyJobs
import ParleyStore

/// `GET /api/search?q=WORDS`: what was said and found in every meeting the user may see
/// (transcript segments, summary points, decisions, action items), best first. Optional
/// `speaker`, `from` and `to` (dates or times, ISO 8601, on the meeting's creation),
/// `meeting`; `limit` (1-100, 20) and `offset` page through; `next_offset` is the next page's.
struct SearchRoutes {
    let store: any Store
    /// Waited for before reading, so the asker's own edits of a moment ago are in.
    let indexer: SearchIndexer

    struct Hit: ResponseEncodable {
        var meetingID: String
        var title: String
        var createdAt: String
        /// segment, summary, decision or action_item.
        var kind: String
        /// The segment's or action item's id; the point's or decision's index.
        var item: Int
        var speaker: String?
        var start: Double?
        /// HTML: the text around the match, escaped, its matching words in `<mark>`.
        var snippet: String
        var score: Double

        enum CodingKeys: String, CodingKey {
            case title, kind, item, speaker, start, snippet, score
            case meetingID = "meeting_id"
            case createdAt = "created_at"
        }
    }

    struct Hits: ResponseEncodable {
        var query: String
        var hits: [Hit]
        var nextOffset: Int?

        enum CodingKeys: String, CodingKey {
            case query, hits
            case nextOffset = "next_offset"
        }
    }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.get { request, context -> Hits in
            let user = try context.requireUser()
            let parameters = request.uri.queryParameters
            let text = parameters.get("q") ?? ""
            guard text.count <= 500 else {
                throw APIError.badRequest("q= is at most 500 characters", code: "invalid_query")
            }
            let words = SearchQuery.words(of: text)
            guard !words.isEmpty else {
                throw APIError.badRequest("q= needs at least one word to search for", code: "invalid_query")
            }
            let limit = try Self.number(parameters.get("limit"), name: "limit", default: 20, range: 1...100)
            let offset = try Self.number(parameters.get("offset"), name: "offset", default: 0, range: 0...10_000)
            let query = SearchQuery(
                words: words, userID: user.id, speaker: Self.nonEmpty(parameters.get("speaker")),
                from: try Self.date(parameters.get("from"), name: "from"),
                to: try Self.date(parameters.get("to"), name: "to", endOfDay: true),
                meetingID: Self.nonEmpty(parameters.get("meeting")), limit: limit + 1, offset: offset)
            await indexer.settle()
            let found = try await store.search(query)
            return Hits(
                query: words.joined(separator: " "),
                hits: found.prefix(limit).map { hit in
                    Hit(
                        meetingID: hit.meetingID, title: hit.title,
                        createdAt: MeetingEvent.formatTimestamp(hit.createdAt),
                        kind: hit.kind.rawValue, item: hit.item, speaker: hit.speaker, start: hit.start,
                        snippet: Self.html(hit.snippet), score: (hit.score * 1000).rounded() / 1000)
                },
                nextOffset: found.count > limit ? offset + limit : nil)
        }
    }

    static func nonEmpty(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    static func number(_ value: String?, name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let value else { return fallback }
        guard let number = Int(value), range.contains(number) else {
            throw APIError.badRequest(
                "\(name)= must be a whole number from \(range.lowerBound) to \(range.upperBound)",
                code: "invalid_\(name)")
        }
        return number
    }

    /// An ISO 8601 date (`2026-12-03`: its start, or with `endOfDay` the start of the next
    /// day) or date and time.
    static func date(_ value: String?, name: String, endOfDay: Bool = false) throws -> Date? {
        guard let value = nonEmpty(value) else { return nil }
        if let time = try? Date(value, strategy: .iso8601) { return time }
        if let day = try? Date(value, strategy: Date.ISO8601FormatStyle().year().month().day()) {
            return endOfDay ? day.addingTimeInterval(86_400) : day
        }
        throw APIError.badRequest(
            "\(name)= must be a date (2026-12-03) or a time (2026-12-03T09:30:00Z)", code: "invalid_\(name)")
    }

    /// The snippet as HTML: its text escaped, the store's marks as `<mark>`.
    static func html(_ snippet: String) -> String {
        var html = ""
        for character in snippet {
            switch character {
            case SearchHit.markStart: html += "<mark>"
            case SearchHit.markEnd: html += "</mark>"
            case "&": html += "&amp;"
            case "<": html += "&lt;"
            case ">": html += "&gt;"
            case "\"": html += "&quot;"
            case "'": html += "&#39;"
            default: html.append(character)
            }
        }
        return html
    }
}
