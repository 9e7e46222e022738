import Foundation
import HTTPTypes
import Logging
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyPluginAPI
import ParleyStore

/// People's edits to a meeting — a speaker's name, an action item, a transcript correction — published as numbered
/// events like the pipeline's, so every viewer sees them live, a reload shows them, and the
/// exports include them. Each edit reads the state up to an offset and publishes only if the
/// log still ends there (compare-and-append, retried on a conflict): an actor alone would not
/// keep edits apart, since it lets another call in at every `await`.
actor MeetingEditor {
    let meetings: MeetingService
    let hub: Hub

    init(meetings: MeetingService, hub: Hub) {
        self.meetings = meetings
        self.hub = hub
    }

    /// Names a speaker (`speakers` with reason `rename`, naming only that speaker). With
    /// `remember`, the speaker's voice in this meeting goes into the owner's voice profile of
    /// that name (made if there is none), so later meetings recognize the person.
    func rename(_ meeting: MeetingRecord, speaker id: String, to name: String, remember: Bool = true) async throws
        -> [SpeakerInfo]
    {
        guard let name = TextRules.required(name, max: 80) else {
            throw MeetingError.invalid("name", "a speaker's name must be 1 to 80 characters, not only spaces")
        }
        var state = try await meetings.state(of: meeting)
        guard state.speakers.contains(where: { $0.id == id }) else {
            throw MeetingError.notFound("no speaker '\(id)' in this meeting")
        }
        let profile = remember ? try await learn(meeting, speaker: id, as: name) : nil
        let event = try await publish(
            .speakers(SpeakersUpdate(reason: .rename, speakers: [SpeakerInfo(id: id, name: name, profile: profile)])),
            in: meeting)
        state.apply(event)
        return state.speakers
    }

    /// Answers a speaker's suggestion: accepted, the speaker takes the profile's name and its
    /// voice strengthens the profile; rejected, the suggestion goes and the profile is never
    /// offered for that speaker of this meeting again.
    func answerSuggestion(_ meeting: MeetingRecord, speaker id: String, profile: String?, accept: Bool) async throws
        -> [SpeakerInfo]
    {
        var state = try await meetings.state(of: meeting)
        guard let speaker = state.speakers.first(where: { $0.id == id }) else {
            throw MeetingError.notFound("no speaker '\(id)' in this meeting")
        }
        guard let suggestion = speaker.suggestion, profile == nil || profile == suggestion.profile else {
            throw MeetingError.conflict("speaker '\(id)' has no such suggestion (any more)")
        }
        if accept {
            guard let record = try await meetings.store.voiceProfile(id: suggestion.profile, ownerID: meeting.ownerID)
            else { throw MeetingError.conflict("the suggested voice profile was deleted") }
            return try await rename(meeting, speaker: id, to: record.name)
        }
        try await meetings.store.rejectVoice(meetingID: meeting.id, speaker: id, profileID: suggestion.profile)
        let event = try await publish(
            .speakers(
                SpeakersUpdate(
                    reason: .rejected,
                    speakers: [SpeakerInfo(id: id, name: speaker.name, suggestion: suggestion)])),
            in: meeting)
        state.apply(event)
        return state.speakers
    }

    /// The speaker's voice into the owner's profile called `name`; nil when this meeting kept
    /// no voice for the speaker (its diarizer made none, or it is still being processed).
    private func learn(_ meeting: MeetingRecord, speaker: String, as name: String) async throws -> String? {
        let store = meetings.store
        guard let voice = try await store.meetingVoices(meetingID: meeting.id).first(where: { $0.speaker == speaker })
        else { return nil }
        let vector = VoiceMatcher(kind: voice.kind).normalized(voice.vector)
        guard !vector.isEmpty else { return nil }
        return try await store.learnVoice(
            ownerID: meeting.ownerID, name: name, kind: voice.kind, vector: vector,
            from: VoiceSource(meetingID: meeting.id, speaker: speaker)
        ).id
    }

    /// What an action item edit may change; absent fields stay, `null` clears owner or due.
    struct ActionItemChange: Decodable {
        var task: String?
        var owner: String??
        var due: String??
        var done: Bool?
        var assignee: String??

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            task = try container.decodeIfPresent(String.self, forKey: .task)
            done = try container.decodeIfPresent(Bool.self, forKey: .done)
            owner = try Self.clearable(container, .owner)
            due = try Self.clearable(container, .due)
            assignee = try Self.clearable(container, .assignee)
        }

        /// Absent: nil (keep); `null`: .some(nil) (clear); a string: .some(text).
        static func clearable(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> String?? {
            guard container.contains(key) else { return nil }
            if try container.decodeNil(forKey: key) { return .some(nil) }
            return .some(try container.decode(String.self, forKey: key))
        }

        enum CodingKeys: String, CodingKey { case task, owner, due, done, assignee }
    }

    /// Changes one action item (`action_items` with the whole list after the change). The list
    /// is appended only if the log has not moved since it was read (another node's edit, the
    /// pipeline's items); otherwise the edit is applied again to the newer state. An item newly
    /// assigned to an account is told to that account (`action_item_assigned`).
    func edit(_ meeting: MeetingRecord, actionItem id: Int, _ change: ActionItemChange, by person: String) async throws
        -> [ActionItemRecord]
    {
        for _ in 0..<5 {
            var state = try await meetings.state(of: meeting)
            guard let index = state.actionItems.firstIndex(where: { $0.id == id }) else {
                throw MeetingError.notFound("no action item \(id) in this meeting")
            }
            var items = state.actionItems
            if let task = change.task {
                guard let task = TextRules.required(task, max: 500) else {
                    throw MeetingError.invalid("task", "a task must be 1 to 500 characters, not only spaces")
                }
                items[index].task = task
            }
            if let owner = change.owner { items[index].owner = try Self.optionalText(owner, field: "owner") }
            if let due = change.due { items[index].due = try Self.optionalText(due, field: "due") }
            if let done = change.done { items[index].done = done }
            if let assignee = change.assignee { items[index].assignee = try await account(assignee, of: meeting) }
            guard items != state.actionItems else { return items }
            do {
                let before = state.actionItems[index].assignee
                state.apply(
                    try await publish(.actionItems(ActionItemsUpdate(items: items)), in: meeting, after: state.offset))
                if items[index].assignee != before {
                    await meetings.noticeAssigned(items[index], in: meeting, by: person)
                }
                return state.actionItems
            } catch let error as StoreError where error.code == .stale {
                continue  // someone else wrote meanwhile: read again
            }
        }
        throw MeetingError.conflict("the meeting kept changing while the edit was saved; try again")
    }

    /// Corrects a transcript segment's text, its speaker, or both (a `transcript` event with the
    /// segment replacing itself, marked `corrected`), compare-and-append like `edit`. A live
    /// recording's provisional segments cannot be corrected: they are replaced as speech goes on.
    func correct(_ meeting: MeetingRecord, segment id: Int, text: String?, speaker: String?, by person: String)
        async throws -> TranscriptSegment
    {
        guard text != nil || speaker != nil else {
            throw MeetingError.invalid("segment", "send the segment's new text, its new speaker, or both")
        }
        let newText = try text.map { text in
            guard let text = TextRules.required(text, max: 5000) else {
                throw MeetingError.invalid("text", "a segment's text must be 1 to 5000 characters, not only spaces")
            }
            return text
        }
        for _ in 0..<5 {
            let state = try await meetings.state(of: meeting)
            guard let segment = state.segments.first(where: { $0.id == id }) else {
                throw MeetingError.notFound("no transcript segment \(id) in this meeting")
            }
            if segment.provisional == true {
                throw MeetingError.conflict("segment \(id) is still being heard; correct it when it is final")
            }
            if let speaker, speaker != segment.speaker, !state.speakers.contains(where: { $0.id == speaker }) {
                throw APIError(.unprocessableContent, "invalid_speaker", "no speaker '\(speaker)' in this meeting")
            }
            let corrected = segment.corrected(text: newText, speaker: speaker, by: person)
            guard corrected.text != segment.text || corrected.speaker != segment.speaker else { return segment }
            do {
                _ = try await publish(.transcript(corrected), in: meeting, after: state.offset)
                return corrected
            } catch let error as StoreError where error.code == .stale {
                continue  // someone else wrote meanwhile: read again
            }
        }
        throw MeetingError.conflict("the meeting kept changing while the correction was saved; try again")
    }

    /// Summarizes a finished meeting again from its transcript as people left it (corrected
    /// text, moved segments, speaker names), with the summarizer this server runs: a `summary`
    /// event and an `action_items` event. An action item whose task the new summary finds again
    /// keeps what people set on it (done, owner, due).
    func summarizeAgain(_ meeting: MeetingRecord, logger: Logger) async throws -> (
        summary: SummaryUpdate, actionItems: [ActionItemRecord]
    ) {
        let state = try await meetings.state(of: meeting)
        guard state.status?.stage == .completed else {
            throw MeetingError.conflict("only a meeting whose processing completed can be summarized again")
        }
        let summarizer = try await meetings.processor.pipeline(for: meeting.diarization).summarizer
        let scratch = try ScratchFolder("summary")
        defer { scratch.remove() }
        var context = PluginContext(logger: logger, scratchDirectory: scratch.path)
        context.logger[metadataKey: "meeting.id"] = "\(meeting.id)"
        let made: MeetingSummary
        do {
            made = try await summarizer.summarize(
                state.segments.map {
                    AttributedSegment(id: $0.id, speaker: $0.speaker, start: $0.start, end: $0.end, text: $0.text)
                },
                participants: state.speakers.map { Participant(id: $0.id, name: $0.name) }, context: context)
        } catch {
            throw APIError(
                .serviceUnavailable, "summarizer_failed", "the summarizer failed: \(MeetingPipeline.words(error))")
        }
        let summary = SummaryUpdate(
            points: made.points, decisions: made.decisions, summarizer: type(of: summarizer).name)
        let before = Dictionary(
            state.actionItems.map { (SpeakerInfo.nameKey($0.task), $0) }, uniquingKeysWith: { first, _ in first })
        let items = made.actionItems.enumerated().map { index, item in
            var record = ActionItemRecord(
                id: index + 1, owner: item.owner, task: item.task, due: item.due,
                time: item.time)
            if let kept = before[SpeakerInfo.nameKey(item.task)] {
                (record.owner, record.due, record.done, record.assignee) = (
                    kept.owner, kept.due, kept.done, kept.assignee
                )
            }
            return record
        }
        _ = try await publish(.summary(summary), in: meeting)
        _ = try await publish(.actionItems(ActionItemsUpdate(items: items)), in: meeting)
        return (summary, items)
    }

    /// The username of an account the meeting is shared with (or its owner), as that account
    /// spells it; nil clears the assignment.
    func account(_ username: String?, of meeting: MeetingRecord) async throws -> String? {
        guard let username = username?.trimmingCharacters(in: .whitespaces), !username.isEmpty else { return nil }
        let store = meetings.store
        let user = try await store.user(named: username)
        let members = try await store.members(meetingID: meeting.id)
        guard let user, user.id == meeting.ownerID || members.contains(where: { $0.userID == user.id }) else {
            throw APIError(
                .unprocessableContent, "invalid_assignee",
                "an action item can be assigned to the meeting's owner or one of its members only")
        }
        return user.username
    }

    /// An owner or due phrase: at most 100 characters; only spaces (or null) clears it.
    static func optionalText(_ value: String?, field: String) throws -> String? {
        guard let value else { return nil }
        guard TextRules.fits(value, max: 100) else {
            throw MeetingError.invalid(field, "\(field) must be at most 100 characters")
        }
        let text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    private func publish(_ data: EventData, in meeting: MeetingRecord, after latest: Int? = nil) async throws
        -> MeetingEvent
    {
        try await hub.withChannel(meetingID: meeting.id, epoch: meeting.epoch) { channel in
            try await channel.publish(data, lease: nil, expecting: latest)
        }
    }
}
