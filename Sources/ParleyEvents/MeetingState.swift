public import Foundation
public import ParleyPluginAPI

/// A meeting as its events have built it so far. Applying every event of a meeting in order
/// gives its whole state; the exports and the server's meeting view are made from this.
public struct MeetingState: Sendable, Hashable, Codable {
    public var meetingID: String
    public var title: String
    /// The latest status event.
    public var status: StatusUpdate?
    public var offset = 0
    public var duration: Double?
    public var speakers: [SpeakerInfo] = []
    /// Names people gave speakers (`speakers` events with reason `rename`); they stay when the
    /// pipeline relabels or renames speakers later.
    public var renames: [String: String] = [:]
    /// What voice recognition said of speakers (`recognized`, less what was `rejected`): a
    /// name and profile, or a suggestion. Kept like renames when the pipeline relabels, and
    /// below them: a name a person gave wins.
    public var recognitions: [String: SpeakerInfo] = [:]
    public var turns: [SpeakerTurnRecord] = []
    /// In time order.
    public var segments: [TranscriptSegment] = []
    public var summary: SummaryUpdate?
    public var actionItems: [ActionItemRecord] = []
    public var error: PipelineFailure?
    public var createdAt: Date
    /// Facts about how the results were made: `word_timing` is `estimated` when some segment's
    /// word times were spread over it rather than given by the recognizer.
    public var metadata: [String: String] = [:]

    public init(meetingID: String, title: String, createdAt: Date = Date()) {
        self.meetingID = meetingID
        self.title = title
        self.createdAt = createdAt
    }

    public var isFinished: Bool { status?.stage == .completed || status?.stage == .failed }

    public mutating func apply(_ event: MeetingEvent) {
        offset = max(offset, event.offset)
        switch event.data {
        case .status(let update) where update.state == .restarted:
            // Processing starts over: what it produced goes; names people gave stay.
            status = update
            speakers = renames.map { SpeakerInfo(id: $0.key, name: $0.value) }.sorted { $0.id < $1.id }
            recognitions = [:]
            turns = []
            segments = []
            summary = nil
            actionItems = []
            error = nil
            metadata = [:]
        case .status(let update):
            status = update
        case .uploadProgress(let progress):
            duration = progress.seconds
        case .transcript(let segment):
            if segment.wordTiming == .estimated { metadata["word_timing"] = WordTiming.estimated.rawValue }
            if let replaced = segment.replaces { segments.removeAll { replaced.contains($0.id) } }
            if segment.onlyRemoves { break }
            let index = segments.firstIndex { ($0.start, $0.id) > (segment.start, segment.id) } ?? segments.endIndex
            segments.insert(segment, at: index)
        case .speakers(let update) where update.reason == .rename:
            // A rename names only the renamed speakers; everyone else keeps their name.
            for speaker in update.speakers {
                renames[speaker.id] = speaker.name
                recognitions[speaker.id] = nil
                place(SpeakerInfo(id: speaker.id, name: speaker.name, profile: speaker.profile))
            }
        case .speakers(let update) where update.reason == .recognized:
            for speaker in update.speakers where renames[speaker.id] == nil {
                recognitions[speaker.id] = speaker
                place(speaker)
            }
        case .speakers(let update) where update.reason == .rejected:
            for speaker in update.speakers {
                recognitions[speaker.id]?.suggestion = nil
                if let index = speakers.firstIndex(where: { $0.id == speaker.id }) { speakers[index].suggestion = nil }
            }
        case .speakers(let update):
            let previous = speakers
            speakers = update.speakers.map { speaker in
                if let name = renames[speaker.id] {
                    let profile = previous.first { $0.id == speaker.id }?.profile
                    return SpeakerInfo(id: speaker.id, name: name, profile: profile)
                }
                guard let recognized = recognitions[speaker.id] else { return speaker }
                // A recognized name stays; a suggestion rides along with the pipeline's name.
                if recognized.profile != nil { return recognized }
                var suggested = speaker
                suggested.suggestion = recognized.suggestion
                return suggested
            }
            followNames(from: previous)
            if let turns = update.turns { self.turns = turns }
            let changes = Dictionary(update.changes.map { ($0.segmentID, $0.speaker) }) { _, last in last }
            // A speaker a person gave a segment stays.
            for i in segments.indices where segments[i].corrected?.speaker != true {
                if let speaker = changes[segments[i].id] { segments[i].speaker = speaker }
            }
        case .summary(let summary):
            self.summary = summary
        case .actionItems(let update):
            actionItems = update.items
        case .error(let failure):
            error = failure
        }
    }

    /// Puts a speaker's new name, profile and suggestion in place (or adds the speaker).
    private mutating func place(_ speaker: SpeakerInfo) {
        let previous = speakers
        if let index = speakers.firstIndex(where: { $0.id == speaker.id }) {
            speakers[index] = speaker
        } else {
            speakers.append(speaker)
        }
        followNames(from: previous)
    }

    /// Action items whose owner is a speaker's old name take the speaker's new one: an owner
    /// "Speaker 2" becomes "Priya" when speaker 2 is named.
    private mutating func followNames(from previous: [SpeakerInfo]) {
        for old in previous {
            guard let new = speakers.first(where: { $0.id == old.id }), new.name != old.name else { continue }
            for i in actionItems.indices where actionItems[i].owner == old.name { actionItems[i].owner = new.name }
        }
    }

    /// The display name of a speaker label.
    public func name(of speaker: String) -> String {
        speakers.first { $0.id == speaker }?.name ?? speaker
    }

    public var wordCount: Int { segments.reduce(0) { $0 + $1.words.count } }
}
