import Foundation
import Hummingbird
import ParleyEvents
import ParleyPipeline
import ParleyStore

/// `GET /api/meetings/{id}`: everything a client needs to draw the meeting, and the offset and
/// epoch to follow it live from (`/ws/meeting/{id}?since=<offset>&epoch=<epoch>`).
struct MeetingView: ResponseEncodable {
    var id: String
    var title: String
    var owner: String
    var members: [String]
    /// Members who may rename speakers and edit action items (the owner always may).
    var editors: [String]
    /// Whether the user asking may edit.
    var canEdit: Bool
    var createdAt: String
    var status: String
    var stage: StatusUpdate?
    var offset: Int
    var epoch: String
    var duration: Double?
    var speakers: [SpeakerInfo]
    /// Who spoke when (after clustering).
    var turns: [SpeakerTurnRecord]
    var segments: [TranscriptSegment]
    var summary: SummaryUpdate?
    var actionItems: [ActionItemRecord]
    var error: PipelineFailure?
    var metadata: [String: String]
    /// What the creator asked of the diarization (a backend, speaker count hints).
    var diarization: DiarizationRequest

    init(
        meeting: MeetingRecord, owner: String, members: [String], editors: [String], state: MeetingState,
        canEdit: Bool
    ) {
        id = meeting.id
        title = meeting.title
        self.owner = owner
        self.members = members
        self.editors = editors
        self.canEdit = canEdit
        createdAt = MeetingEvent.formatTimestamp(meeting.createdAt)
        // The log's last word wins: the `completed` event is out before the row says so.
        switch state.status?.stage {
        case .completed?: status = MeetingStatus.completed.rawValue
        case .failed?: status = MeetingStatus.failed.rawValue
        default: status = meeting.status.rawValue
        }
        stage = state.status
        offset = state.offset
        epoch = meeting.epoch
        duration = state.duration
        speakers = state.speakers
        turns = state.turns
        segments = state.segments
        summary = state.summary
        actionItems = state.actionItems
        error = state.error
        metadata = state.metadata
        diarization = meeting.diarization
    }

    enum CodingKeys: String, CodingKey {
        case id, title, owner, members, editors, canEdit = "can_edit", createdAt = "created_at", status, stage,
            offset, epoch, duration, speakers, turns, segments, summary, actionItems = "action_items", error, metadata,
            diarization
    }
}

/// One row of `GET /api/meetings`.
struct MeetingSummaryView: ResponseEncodable {
    var id: String
    var title: String
    var owner: String
    var createdAt: String
    var status: String
    var epoch: String
    /// Seconds of audio, once an upload has been decoded.
    var duration: Double?
    var diarization: DiarizationRequest

    enum CodingKeys: String, CodingKey {
        case id, title, owner, createdAt = "created_at", status, epoch, duration, diarization
    }
}
