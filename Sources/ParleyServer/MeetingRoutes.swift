import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyStore
import Synchronization

/// `/api/meetings`: create, list, read, delete, members, audio upload and playback, exports, and
/// people's edits (speaker names, action items, transcript corrections).
struct MeetingRoutes {
    let store: any Store
    let meetings: MeetingService
    let editor: MeetingEditor

    struct NewMeeting: Decodable {
        var title: String
        var diarizer: String?
        var speakers: Int?
        var minSpeakers: Int?
        var maxSpeakers: Int?

        enum CodingKeys: String, CodingKey {
            case title, diarizer, speakers
            case minSpeakers = "min_speakers"
            case maxSpeakers = "max_speakers"
        }

        /// The diarization asked for, or why it cannot be had: 400 for what the document's schema
        /// rules out, 422 for counts that contradict each other (a schema cannot say so).
        func diarization(known: [String]) throws -> DiarizationRequest {
            if let diarizer, !known.contains(diarizer) {
                throw APIError.badRequest(
                    "diarizer '\(diarizer)' is not one of \(known.joined(separator: ", "))", code: "invalid_diarizer")
            }
            for (name, value) in [("speakers", speakers), ("min_speakers", minSpeakers), ("max_speakers", maxSpeakers)]
            {
                if let value, !(1...64).contains(value) {
                    throw APIError.badRequest("\(name) must be 1 to 64, not \(value)", code: "invalid_speakers")
                }
            }
            let low = minSpeakers ?? 1
            if let maxSpeakers, maxSpeakers < low {
                throw APIError(
                    .unprocessableContent, "invalid_speakers",
                    "max_speakers (\(maxSpeakers)) is below min_speakers (\(low))")
            }
            if let speakers, speakers < low || speakers > (maxSpeakers ?? 64) {
                throw APIError(
                    .unprocessableContent, "invalid_speakers",
                    "speakers (\(speakers)) lies outside min_speakers and max_speakers")
            }
            return DiarizationRequest(
                diarizer: diarizer, speakers: speakers, minSpeakers: minSpeakers, maxSpeakers: maxSpeakers)
        }
    }
    /// `PATCH /api/meetings/{id}`: a new title.
    struct Retitle: Decodable { var title: String }
    struct NewMember: Decodable {
        var username: String
        var canEdit: Bool?

        enum CodingKeys: String, CodingKey { case username, canEdit = "can_edit" }
    }
    struct MeetingList: ResponseEncodable { var meetings: [MeetingSummaryView] }
    struct Members: ResponseEncodable {
        var owner: String
        var members: [String]
        var editors: [String]
    }
    struct Rename: Decodable {
        var name: String
        /// false: "just this meeting", no voice profile learns from it.
        var remember: Bool?
    }
    struct SuggestionAnswer: Decodable {
        var accept: Bool
        /// The profile suggested, so an answer to an old suggestion is not taken for a newer one.
        var profile: String?
    }
    struct Speakers: ResponseEncodable { var speakers: [SpeakerInfo] }
    struct Correction: Decodable {
        var text: String?
        var speaker: String?
    }
    struct Corrected: ResponseEncodable { var segment: TranscriptSegment }
    struct Summarized: ResponseEncodable {
        var summary: SummaryUpdate
        var actionItems: [ActionItemRecord]

        enum CodingKeys: String, CodingKey {
            case summary
            case actionItems = "action_items"
        }
    }
    struct ActionItems: ResponseEncodable {
        var actionItems: [ActionItemRecord]

        enum CodingKeys: String, CodingKey { case actionItems = "action_items" }
    }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.post { request, context -> EditedResponse<MeetingSummaryView> in
            let user = try context.requireUser()
            let body = try await request.decode(as: NewMeeting.self, context: context)
            guard let title = TextRules.required(body.title, max: 200) else {
                throw APIError.badRequest(
                    "the title must be 1 to 200 characters, not only spaces", code: "invalid_title")
            }
            let diarization = try body.diarization(known: meetings.settings.diarizers)
            if diarization.diarizer != nil {
                // A backend this server cannot run is refused now, not when the recording arrives.
                do {
                    _ = try await meetings.processor.pipeline(for: diarization)
                } catch let error as PipelineError {
                    throw APIError(.unprocessableContent, "diarizer_not_ready", error.message)
                }
            }
            let meeting = MeetingRecord(
                id: Identifiers.meeting(), title: title, ownerID: user.id, createdAt: Date(),
                epoch: Identifiers.epoch(), diarization: diarization)
            try await store.createMeeting(meeting)
            await meetings.noticeListed(meeting, owner: user.username, to: user.id, shared: false)
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
                rows.append(try await meetings.listRow(meeting, owner: names[meeting.ownerID]!))
            }
            return MeetingList(meetings: rows)
        }
        group.get(":id") { _, context -> MeetingView in
            let user = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: user)
            return try await meetings.view(of: meeting, for: user)
        }
        group.patch(":id") { request, context -> MeetingSummaryView in
            let user = try context.requireUser()
            var meeting = try await meetings.meeting(try context.parameters.require("id"), for: user, need: .edit)
            let body = try await request.decode(as: Retitle.self, context: context)
            guard let title = TextRules.required(body.title, max: 200) else {
                throw APIError.badRequest(
                    "the title must be 1 to 200 characters, not only spaces", code: "invalid_title")
            }
            if title != meeting.title {
                guard try await store.retitleMeeting(id: meeting.id, title: title) else {
                    throw APIError.notFound("no meeting \(meeting.id)")
                }
                meeting.title = title
                meetings.states.forget(meetingID: meeting.id)
                meetings.notice(
                    "meeting_updated", meeting, to: (try? await store.viewerIDs(of: meeting.id)) ?? [meeting.ownerID],
                    by: user.username)
            }
            let owner = meeting.ownerID == user.id ? user.username : try await store.user(id: meeting.ownerID)?.username
            return try await meetings.listRow(meeting, owner: owner ?? meeting.ownerID)
        }
        group.delete(":id") { _, context -> HTTPResponse.Status in
            let user = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: user, need: .own)
            try await meetings.delete(meeting, by: user.username)
            return .noContent
        }
        group.post(":id/members") { request, context -> EditedResponse<Members> in
            let owner = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: owner, need: .own)
            let body = try await request.decode(as: NewMember.self, context: context)
            guard let member = try await store.user(named: body.username) else {
                throw APIError(.unprocessableContent, "unknown_user", "no account named '\(body.username)'")
            }
            if member.id != owner.id {
                let known = try await store.members(meetingID: meeting.id).contains { $0.userID == member.id }
                try await store.addMember(meetingID: meeting.id, userID: member.id, canEdit: body.canEdit ?? false)
                await meetings.indexer.reindex(meeting.id)  // the new member finds it in searches
                if !known {
                    await meetings.noticeListed(
                        meeting, owner: owner.username, to: member.id, shared: true, canEdit: body.canEdit ?? false)
                }
            }
            let (members, editors) = try await meetings.memberNames(meeting.id)
            return EditedResponse(
                status: .created, response: Members(owner: owner.username, members: members, editors: editors))
        }
        group.delete(":id/members/:username") { _, context -> Members in
            let owner = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: owner, need: .own)
            let username = try context.parameters.require("username")
            guard let member = try await store.user(named: username),
                try await store.removeMember(meetingID: meeting.id, userID: member.id)
            else {
                throw APIError.notFound("'\(username)' is not a member of this meeting")
            }
            await meetings.indexer.reindex(meeting.id)  // and the removed one no more
            meetings.notice("meeting_unshared", meeting, to: [member.id], by: owner.username)
            // Their sockets on this meeting close now here, and at the next sweep on other nodes.
            let allowed = try await store.viewers(meetingIDs: [meeting.id])[meeting.id] ?? []
            meetings.hub.openChannel(meetingID: meeting.id)?.closeViewers(notIn: allowed)
            // And the recording they were making through this node, if any.
            if let ingest = meetings.recordings.withLock({ $0[meeting.id] })?.connection, ingest.userID == member.id {
                ingest.close(code: 4003, reason: "removed from the meeting")
            }
            let (members, editors) = try await meetings.memberNames(meeting.id)
            return Members(owner: owner.username, members: members, editors: editors)
        }
        group.put(":id/speakers/:speaker") { request, context -> Speakers in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), need: .edit)
            let body = try await request.decode(as: Rename.self, context: context)
            return Speakers(
                speakers: try await editor.rename(
                    meeting, speaker: try context.parameters.require("speaker"), to: body.name,
                    remember: body.remember ?? true))
        }
        group.post(":id/speakers/:speaker/suggestion") { request, context -> Speakers in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), need: .edit)
            let body = try await request.decode(as: SuggestionAnswer.self, context: context)
            return Speakers(
                speakers: try await editor.answerSuggestion(
                    meeting, speaker: try context.parameters.require("speaker"), profile: body.profile,
                    accept: body.accept))
        }
        group.patch(":id/action-items/:item") { request, context -> ActionItems in
            let user = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: user, need: .edit)
            guard let item = Int(try context.parameters.require("item")) else {
                throw APIError.notFound("no action item '\(context.parameters.get("item") ?? "")'")
            }
            let change = try await request.decode(as: MeetingEditor.ActionItemChange.self, context: context)
            return ActionItems(
                actionItems: try await editor.edit(meeting, actionItem: item, change, by: user.username))
        }
        group.patch(":id/segments/:segment") { request, context -> Corrected in
            let user = try context.requireUser()
            let meeting = try await meetings.meeting(try context.parameters.require("id"), for: user, need: .edit)
            guard let segment = Int(try context.parameters.require("segment")) else {
                throw APIError.notFound("no transcript segment '\(context.parameters.get("segment") ?? "")'")
            }
            let body = try await request.decode(as: Correction.self, context: context)
            return Corrected(
                segment: try await editor.correct(
                    meeting, segment: segment, text: body.text, speaker: body.speaker, by: user.username))
        }
        group.post(":id/summary") { _, context -> Summarized in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), need: .edit)
            let (summary, items) = try await editor.summarizeAgain(meeting, logger: context.logger)
            return Summarized(summary: summary, actionItems: items)
        }
        group.get(":id/audio") { request, context -> Response in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser())
            return try await meetings.audio(of: meeting, request: request, context: context)
        }
        group.put(":id/audio") { request, context -> Response in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), need: .own)
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
            epoch: meeting.epoch, duration: nil, diarization: meeting.diarization)
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
