import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ParleyPipeline
import ParleyStore

/// `/api/meetings`: create, list, read, delete, members, audio upload, exports.
struct MeetingRoutes {
    let store: any Store
    let meetings: MeetingService

    struct NewMeeting: Decodable { var title: String }
    struct NewMember: Decodable { var username: String }
    struct MeetingList: ResponseEncodable { var meetings: [MeetingSummaryView] }
    struct Members: ResponseEncodable {
        var owner: String
        var members: [String]
    }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.post { request, context -> EditedResponse<MeetingSummaryView> in
            let user = try context.requireUser()
            let body = try await request.decode(as: NewMeeting.self, context: context)
            let title = body.title.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...200).contains(title.count) else {
                throw APIError.badRequest("the title must be 1 to 200 characters", code: "invalid_title")
            }
            let meeting = MeetingRecord(
                id: Identifiers.meeting(), title: title, ownerID: user.id, createdAt: Date(),
                epoch: Identifiers.epoch())
            try await store.createMeeting(meeting)
            return EditedResponse(status: .created, response: summary(meeting, owner: user.username))
        }
        group.get { _, context -> MeetingList in
            let user = try context.requireUser()
            var rows: [MeetingSummaryView] = []
            var names: [String: String] = [user.id: user.username]
            for meeting in try await store.meetings(visibleTo: user.id) {
                if names[meeting.ownerID] == nil {
                    names[meeting.ownerID] = try await store.user(id: meeting.ownerID)?.username ?? meeting.ownerID
                }
                rows.append(summary(meeting, owner: names[meeting.ownerID]!))
            }
            return MeetingList(meetings: rows)
        }
        group.get(":id") { _, context -> MeetingView in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser())
            return try await meetings.view(of: meeting)
        }
        group.delete(":id") { _, context -> HTTPResponse.Status in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), ownerOnly: true)
            try await meetings.delete(meeting)
            return .noContent
        }
        group.post(":id/members") { request, context -> EditedResponse<Members> in
            let owner = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: owner, ownerOnly: true)
            let body = try await request.decode(as: NewMember.self, context: context)
            guard let member = try await store.user(named: body.username) else {
                throw APIError.notFound("no user '\(body.username)'")
            }
            if member.id != owner.id { try await store.addMember(meetingID: meeting.id, userID: member.id) }
            return EditedResponse(
                status: .created,
                response: Members(owner: owner.username, members: try await meetings.memberNames(meeting.id)))
        }
        group.put(":id/audio") { request, context -> Response in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), ownerOnly: true)
            return try await meetings.upload(meeting, request: request, context: context)
        }
        group.get(":id/export") { request, context -> Response in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser())
            let name = request.uri.queryParameters.get("format") ?? "json"
            guard let format = ExportFormat(rawValue: name.lowercased() == "markdown" ? "md" : name.lowercased())
            else {
                throw APIError.badRequest(
                    "unknown format '\(name)' (json, srt, vtt, txt, md, rttm)", code: "invalid_format")
            }
            let state = try await meetings.state(of: meeting)
            let text = try Exporter.render(state, as: format)
            let safeTitle = meeting.title.unicodeScalars.map {
                CharacterSet.alphanumerics.contains($0) && $0.isASCII ? String($0) : "-"
            }.joined()
            var headers: HTTPFields = [.contentType: Self.contentType(format)]
            headers[.contentDisposition] =
                "attachment; filename=\"\(safeTitle.isEmpty ? meeting.id : safeTitle).\(format.fileExtension)\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    func summary(_ meeting: MeetingRecord, owner: String) -> MeetingSummaryView {
        MeetingSummaryView(
            id: meeting.id, title: meeting.title, owner: owner,
            createdAt: MeetingEvent.formatTimestamp(meeting.createdAt), status: meeting.status.rawValue,
            epoch: meeting.epoch)
    }

    static func contentType(_ format: ExportFormat) -> String {
        switch format {
        case .json: "application/json; charset=utf-8"
        case .srt: "application/x-subrip; charset=utf-8"
        case .vtt: "text/vtt; charset=utf-8"
        case .txt, .rttm: "text/plain; charset=utf-8"
        case .md: "text/markdown; charset=utf-8"
        }
    }
}
