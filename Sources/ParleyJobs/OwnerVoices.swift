public import ParleyEvents
public import ParleyPipeline
public import ParleyStore

/// The voice profiles of a meeting's owner, as the pipeline's ``VoiceDirectory``: the final
/// speakers' voices are stored with the meeting (a rename later turns one into a profile), and
/// each speaker with enough speech is matched with the owner's profiles of the same kind.
public struct OwnerVoices: VoiceDirectory {
    let store: any Store
    let meeting: MeetingRecord
    let mode: EngineSettings.VoiceRecognition
    /// The read model: the names people gave this meeting's speakers (a meeting processed again
    /// keeps them) are nobody else's, and a renamed speaker is not matched.
    let states: MeetingStates?
    /// A speaker needs this much speech (seconds) to be recognized: a shorter stretch gives an
    /// embedding too unsure to name anyone by.
    public static let minSpeech = 2.0

    public init(
        store: any Store, meeting: MeetingRecord, mode: EngineSettings.VoiceRecognition = .name,
        states: MeetingStates? = nil
    ) {
        self.store = store
        self.meeting = meeting
        self.mode = mode
        self.states = states
    }

    public func recognize(_ voices: [SpeakerVoice], kind: String) async throws -> [VoiceMatcher.Match] {
        let matcher = VoiceMatcher(kind: kind)
        let stored = try await store.putMeetingVoices(
            meetingID: meeting.id,
            voices.map {
                MeetingVoiceRecord(
                    meetingID: meeting.id, speaker: $0.speaker, kind: kind, vector: $0.vector, speech: $0.speech)
            })
        guard mode != .off else { return [] }
        let prints = try await store.voicePrints(ownerID: meeting.ownerID, kind: kind)
        guard !prints.isEmpty else { return [] }
        let rejected = Dictionary(stored.map { ($0.speaker, Set($0.rejected)) }) { first, _ in first }
        // Names people gave this meeting's speakers are nobody else's, and those speakers are
        // not matched (a name a person gave wins anyway).
        let renames = try await states?.state(of: meeting).renames ?? [:]
        let given = Set(renames.values)
        let candidates = voices.filter { $0.speech >= Self.minSpeech && renames[$0.speaker] == nil }.map {
            VoiceMatcher.Voice(speaker: $0.speaker, vector: $0.vector, rejected: rejected[$0.speaker] ?? [])
        }
        let matches = matcher.match(
            candidates, profiles: prints.map { .init(id: $0.profileID, name: $0.name, vector: $0.vector) },
            taken: given)
        guard mode == .suggest else { return matches }
        return matches.map {
            var match = $0
            match.confident = false
            return match
        }
    }
}
