import Foundation
public import NIOCore
public import ParleyEvents

/// The hub's own messages (not numbered, not persisted), serialized once each.
extension MeetingChannel {
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func message(_ value: some Encodable) -> ByteBuffer {
        // The hub's own messages are plain structs of strings and numbers: encoding cannot fail.
        ByteBuffer(string: (try? encode(value)) ?? "{}")
    }
}

/// The first message on every connection.
struct Connected: Encodable {
    let type = "connected"
    var meetingID: String
    var offset: Int
    var epoch: String
    var recovered: Bool
    var viewers: [Viewer]
    var timestamp: String

    private enum CodingKeys: String, CodingKey {
        case type, meetingID = "meeting_id", offset, epoch, recovered, viewers, timestamp
    }
}

/// Who is watching changed. Not numbered: presence is not part of the meeting's log.
struct Presence: Encodable {
    struct Change: Encodable {
        var viewers: [Viewer]
        var joined: Viewer?
        var left: Viewer?
    }
    let type = "presence"
    var meetingID: String
    var timestamp: String
    var data: Change

    private enum CodingKeys: String, CodingKey { case type, meetingID = "meeting_id", timestamp, data }
}

/// `ping` and `pong`: keepalive messages, not numbered.
public struct Keepalive: Encodable, Sendable {
    public let type: String
    public let timestamp: String

    public static func ping() -> ByteBuffer {
        MeetingChannel.message(Keepalive(type: "ping", timestamp: MeetingEvent.formatTimestamp(Date())))
    }

    public static func pong() -> ByteBuffer {
        MeetingChannel.message(Keepalive(type: "pong", timestamp: MeetingEvent.formatTimestamp(Date())))
    }
}
