public import ParleyEvents
public import ParleyPipeline
public import ParleyStore

/// The voice profiles of a meeting's owner, as the pipeline's ``VoiceDirectory``: the final
/// speakers' voices are stored with the meeting (a rename later turns one into a profile), and
/// each speaker with enough speech is matched with the owner's profiles of the same kind.
public struct OwnerVoices: VoiceDirectory {
    let store: any Store
    let meeting: MeetingRecord
    /// A speaker needs this much speech (seconds) to be recognized: a shorter stretch gives an
    /// embedding too unsure to name anyone by.
    public static let minSpeech = 2.0

    public init(store: any Store, meeting: MeetingRecord) {
        self.store = store
        self.meeting = meeting
    }

    public func recognize(_ voices: [SpeakerVoice], kind: String, speakers: [SpeakerInfo]) async throws
        -> [VoiceMatcher.Match]
    {
        let matcher = VoiceMatcher(kind: kind)
        let stored = try await store.putMeetingVoices(
            meetingID: meeting.id,
            voices.map {
                MeetingVoiceRecord(
                    meetingID: meeting.id, speaker: $0.speaker, kind: kind, vector: $0.vector, speech: $0.speech)
            })
        let prints = try await store.voicePrints(ownerID: meeting.ownerID, kind: kind)
        guard !prints.isEmpty else { return [] }
        let rejected = Dictionary(stored.map { ($0.speaker, Set($0.rejected)) }) { first, _ in first }
        let candidates = voices.filter { $0.speech >= Self.minSpeech }.map {
            VoiceMatcher.Voice(speaker: $0.speaker, vector: $0.vector, rejected: rejected[$0.speaker] ?? [])
        }
        // Names people gave this meeting's speakers are nobody else's.
        let given = Set(speakers.filter { $0.profile != nil }.map(\.name))
        return matcher.match(
            candidates, profiles: prints.map { .init(id: $0.profileID, name: $0.name, vector: $0.vector) },
            taken: given)
    }
}
