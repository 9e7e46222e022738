import Foundation
import ParleyEvents
import ParleyHub
import ParleyPipeline
import ParleyStore

/// People's edits to a meeting — a speaker's name, an action item — published as numbered
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

    /// Names a speaker (`speakers` with reason `rename`, naming only that speaker).
    func rename(_ meeting: MeetingRecord, speaker id: String, to name: String) async throws -> [SpeakerInfo] {
        guard let name = TextRules.required(name, max: 80) else {
            throw MeetingError.invalid("name", "a speaker's name must be 1 to 80 characters, not only spaces")
        }
        var state = try await meetings.state(of: meeting)
        guard state.speakers.contains(where: { $0.id == id }) else {
            throw MeetingError.notFound("no speaker '\(id)' in this meeting")
        }
        let event = try await publish(
            .speakers(SpeakersUpdate(reason: .rename, speakers: [SpeakerInfo(id: id, name: name)])), in: meeting)
        state.apply(event)
        return state.speakers
    }

    /// What an action item edit may change; absent fields stay, `null` clears owner or due.
    struct ActionItemChange: Decodable {
        var task: String?
        var owner: String??
        var due: String??
        var done: Bool?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            task = try container.decodeIfPresent(String.self, forKey: .task)
            done = try container.decodeIfPresent(Bool.self, forKey: .done)
            owner = try Self.clearable(container, .owner)
            due = try Self.clearable(container, .due)
        }

        /// Absent: nil (keep); `null`: .some(nil) (clear); a string: .some(text).
        static func clearable(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> String?? {
            guard container.contains(key) else { return nil }
            if try container.decodeNil(forKey: key) { return .some(nil) }
            return .some(try container.decode(String.self, forKey: key))
        }

        enum CodingKeys: String, CodingKey { case task, owner, due, done }
    }

    /// Changes one action item (`action_items` with the whole list after the change). The list
    /// is appended only if the log has not moved since it was read (another node's edit, the
    /// pipeline's items); otherwise the edit is applied again to the newer state.
    func edit(_ meeting: MeetingRecord, actionItem id: Int, _ change: ActionItemChange) async throws
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
            guard items != state.actionItems else { return items }
            do {
                state.apply(
                    try await publish(.actionItems(ActionItemsUpdate(items: items)), in: meeting, after: state.offset))
                return state.actionItems
            } catch let error as StoreError where error.code == .stale {
                continue  // someone else wrote meanwhile: read again
            }
        }
        throw MeetingError.conflict("the meeting kept changing while the edit was saved; try again")
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
