public import Foundation
public import ParleyPluginAPI

/// One event of a meeting's stream: the public protocol of ARCHITECTURE.md. Encoded as
/// `{"type", "meeting_id", "offset", "timestamp", "data"}` with an ISO 8601 UTC timestamp
/// (milliseconds); `offset` counts 1, 2, 3 ... per meeting with no gaps.
public struct MeetingEvent: Sendable, Hashable, Codable {
    public var meetingID: String
    public var offset: Int
    public var timestamp: Date
    public var data: EventData

    public init(meetingID: String, offset: Int, timestamp: Date, data: EventData) {
        self.meetingID = meetingID
        self.offset = offset
        // Kept to the millisecond the wire format carries, so an event decodes to itself.
        self.timestamp = Date(timeIntervalSince1970: (timestamp.timeIntervalSince1970 * 1000).rounded() / 1000)
        self.data = data
    }

    public var type: String { data.type }

    private enum CodingKeys: String, CodingKey { case type, meetingID = "meeting_id", offset, timestamp, data }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(meetingID, forKey: .meetingID)
        try c.encode(offset, forKey: .offset)
        try c.encode(Self.formatTimestamp(timestamp), forKey: .timestamp)
        switch data {
        case .status(let v): try c.encode(v, forKey: .data)
        case .uploadProgress(let v): try c.encode(v, forKey: .data)
        case .transcript(let v): try c.encode(v, forKey: .data)
        case .speakers(let v): try c.encode(v, forKey: .data)
        case .summary(let v): try c.encode(v, forKey: .data)
        case .actionItems(let v): try c.encode(v, forKey: .data)
        case .error(let v): try c.encode(v, forKey: .data)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        meetingID = try c.decode(String.self, forKey: .meetingID)
        offset = try c.decode(Int.self, forKey: .offset)
        let stamp = try c.decode(String.self, forKey: .timestamp)
        guard let date = Self.parseTimestamp(stamp) else {
            throw DecodingError.dataCorruptedError(
                forKey: .timestamp, in: c, debugDescription: "not ISO 8601: \(stamp)")
        }
        timestamp = Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "status": data = .status(try c.decode(StatusUpdate.self, forKey: .data))
        case "upload_progress": data = .uploadProgress(try c.decode(UploadProgress.self, forKey: .data))
        case "transcript": data = .transcript(try c.decode(TranscriptSegment.self, forKey: .data))
        case "speakers": data = .speakers(try c.decode(SpeakersUpdate.self, forKey: .data))
        case "summary": data = .summary(try c.decode(SummaryUpdate.self, forKey: .data))
        case "action_items": data = .actionItems(try c.decode(ActionItemsUpdate.self, forKey: .data))
        case "error": data = .error(try c.decode(PipelineFailure.self, forKey: .data))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown event type \(type)")
        }
    }

    /// `2026-11-29T10:15:02.123Z`. Not `ISO8601FormatStyle(includingFractionalSeconds:)` alone:
    /// it truncates the fraction, and a time rounded to the millisecond is a binary fraction a
    /// hair below it about half the time (measured: 99,200 of 200,000 printed a millisecond
    /// early), so an event would not decode to itself. The whole seconds are formatted by it.
    public static func formatTimestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let seconds = Date(timeIntervalSince1970: Double(milliseconds.quotientAndRemainder(dividingBy: 1000).quotient))
        let whole = Date.ISO8601FormatStyle().format(seconds)  // 2026-11-29T10:15:02Z
        let fraction = (milliseconds % 1000 + 1000) % 1000
        return whole.dropLast() + "." + String(format: "%03d", fraction) + "Z"
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }
}
