import Foundation
import NIOCore
import ParleyEvents
import ParleyHub

/// What people working on a meeting together tell each other through the meeting's socket, not
/// numbered and not stored: what an editor is editing (`editing`), and where each viewer is in
/// the meeting (`cursor`: playback time and selected segment). The server checks and stamps
/// them (who, which connection) and passes them to everyone else watching the meeting on this
/// node; cursors are coalesced to at most one every `cursorInterval` per connection, the last
/// one kept.
enum Collaboration {
    static let cursorInterval = TimeAmount.milliseconds(250)

    /// `{"type":"editing","data":{"item":"segment:12"}}` (null or absent: stopped) and
    /// `{"type":"cursor","data":{"time":12.5,"segment":4}}` as clients send them.
    struct Incoming: Decodable {
        struct Payload: Decodable {
            var item: String?
            var time: Double?
            var segment: Int?
        }
        var type: String
        var data: Payload?
        /// `data` was there but not of the shape `editing` and `cursor` take (a `ping` may
        /// carry anything; those two are refused).
        var malformed = false

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = try container.decode(String.self, forKey: .type)
            data = try? container.decodeIfPresent(Payload.self, forKey: .data)
            malformed =
                data == nil && container.contains(.data) && !((try? container.decodeNil(forKey: .data)) ?? false)
        }
        enum CodingKeys: String, CodingKey { case type, data }
    }

    /// What others receive.
    struct Outgoing<Payload: Encodable>: Encodable {
        let type: String
        let meetingID: String
        let timestamp: String
        let data: Payload

        enum CodingKeys: String, CodingKey {
            case type, timestamp, data
            case meetingID = "meeting_id"
        }
    }
    /// (Absent values are sent as null, so a client can tell "stopped" from a missing field.)
    struct Editing: Encodable {
        let user: String
        /// The sender's connection (a user may have two pages open).
        let connection: Int
        let item: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(user, forKey: .user)
            try container.encode(connection, forKey: .connection)
            try container.encode(item, forKey: .item)
        }
        enum CodingKeys: String, CodingKey { case user, connection, item }
    }
    struct Cursor: Encodable {
        let user: String
        let connection: Int
        let time: Double?
        let segment: Int?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(user, forKey: .user)
            try container.encode(connection, forKey: .connection)
            try container.encode(time, forKey: .time)
            try container.encode(segment, forKey: .segment)
        }
        enum CodingKeys: String, CodingKey { case user, connection, time, segment }
    }

    enum Rejection: Error {
        case message(code: String, text: String)
    }

    /// `segment:12`, `action_item:3`, `speaker:S2`: what can be edited.
    static func isItem(_ item: String) -> Bool {
        let parts = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, ["segment", "action_item", "speaker"].contains(parts[0]) else { return false }
        return (1...40).contains(parts[1].count)
            && parts[1].unicodeScalars.allSatisfy {
                CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "_" || $0 == "-"
            }
    }

    static func editing(_ incoming: Incoming, from subscriber: Subscriber, in meetingID: String)
        throws(Rejection) -> ByteBuffer
    {
        let item = incoming.data?.item
        if incoming.malformed || item.map({ !isItem($0) }) == true {
            throw .message(
                code: "bad_message", text: "editing takes an item like \"segment:12\" or \"action_item:3\", or null")
        }
        return encode(
            "editing", meetingID,
            Editing(user: subscriber.viewer.username, connection: subscriber.id, item: item))
    }

    static func cursor(_ incoming: Incoming, from subscriber: Subscriber, in meetingID: String)
        throws(Rejection) -> ByteBuffer
    {
        let payload = incoming.data
        if incoming.malformed {
            throw .message(code: "bad_message", text: "a cursor is {\"time\": seconds, \"segment\": id}")
        }
        if let time = payload?.time, !(time.isFinite && (0...1_000_000).contains(time)) {
            throw .message(code: "bad_message", text: "a cursor's time is seconds into the meeting (0 or more)")
        }
        if let segment = payload?.segment, segment < 0 {
            throw .message(code: "bad_message", text: "a cursor's segment is a segment id (0 or more)")
        }
        return encode(
            "cursor", meetingID,
            Cursor(
                user: subscriber.viewer.username, connection: subscriber.id, time: payload?.time,
                segment: payload?.segment))
    }

    private static func encode(_ type: String, _ meetingID: String, _ data: some Encodable) -> ByteBuffer {
        let message = Outgoing(
            type: type, meetingID: meetingID, timestamp: MeetingEvent.formatTimestamp(Date()), data: data)
        return ByteBuffer(bytes: (try? JSONEncoder().encode(message)) ?? Data("{}".utf8))
    }
}

/// A connection's cursors on their way out: at most one every `Collaboration.cursorInterval`,
/// and the newest wins (used on the connection's event loop only).
struct CursorPacer {
    private var lastSent: NIODeadline?
    private var pending: ByteBuffer?
    private var scheduled = false
    /// The connection closed: a kept cursor is not sent after the viewer has left.
    private var stopped = false

    mutating func stop() {
        stopped = true
        pending = nil
    }

    /// Sends now, or keeps the cursor until the interval has passed (`schedule` is called once
    /// per waiting period, to call `flush` then).
    mutating func offer(
        _ message: ByteBuffer, now: NIODeadline = .now(), send: (ByteBuffer) -> Void, schedule: (TimeAmount) -> Void
    ) {
        guard !stopped else { return }
        if let lastSent, now - lastSent < Collaboration.cursorInterval {
            pending = message
            if !scheduled {
                scheduled = true
                schedule(Collaboration.cursorInterval - (now - lastSent))
            }
            return
        }
        lastSent = now
        send(message)
    }

    /// The kept cursor, if any, once the interval has passed.
    mutating func flush(now: NIODeadline = .now(), send: (ByteBuffer) -> Void) {
        scheduled = false
        guard let message = pending else { return }
        pending = nil
        lastSent = now
        send(message)
    }
}
