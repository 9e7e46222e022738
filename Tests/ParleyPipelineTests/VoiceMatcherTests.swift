import Foundation
import ParleyEvents
import Testing

@testable import ParleyPipeline

/// Matching voices with profiles: precision first, one name per speaker, suggestions below the
/// naming score; and what the events make of recognized names.
@Suite struct VoiceMatcherTests {
    let neural = VoiceMatcher(kind: "campplus-cn-en-common-192")

    func unit(_ values: [Float]) -> [Float] { neural.normalized(values) }

    @Test func confidentMatchesNameAndWeakerOnesAreSuggestions() {
        let profiles = [
            VoiceMatcher.Profile(id: "v_a", name: "Ana", vector: unit([1, 0, 0])),
            VoiceMatcher.Profile(id: "v_b", name: "Ben", vector: unit([0, 1, 0])),
        ]
        let voices = [
            VoiceMatcher.Voice(speaker: "S1", vector: [0.95, 0.1, 0.2]),  // Ana, clearly
            VoiceMatcher.Voice(speaker: "S2", vector: [0.3, 0.5, 0.8]),  // like Ben a little (0.5)
            VoiceMatcher.Voice(speaker: "S3", vector: [0, 0, 1]),  // nobody known
        ]
        let matches = neural.match(voices, profiles: profiles)
        #expect(matches.map(\.speaker) == ["S1", "S2"])
        #expect(matches[0].name == "Ana" && matches[0].confident && matches[0].confidence > 0.9)
        #expect(matches[1].name == "Ben" && !matches[1].confident)
    }

    @Test func aVoiceAsCloseToTwoPeopleIsNotNamedAndNoProfileIsUsedTwice() {
        let profiles = [
            VoiceMatcher.Profile(id: "v_a", name: "Ana", vector: unit([1, 0])),
            VoiceMatcher.Profile(id: "v_b", name: "Anna", vector: unit([0.96, 0.28])),
        ]
        let between = neural.match([.init(speaker: "S1", vector: [0.99, 0.14])], profiles: profiles)
        #expect(between.count == 1 && !between[0].confident)
        // Two speakers like Ana: only the closer gets her; the other may get Anna or nothing.
        let two = neural.match(
            [.init(speaker: "S1", vector: [1, 0.01]), .init(speaker: "S2", vector: [1, 0.05])],
            profiles: [profiles[0]])
        #expect(two.map(\.speaker) == ["S1"])
    }

    @Test func rejectedProfilesAndNamesPeopleGaveAreLeftOut() {
        let profiles = [VoiceMatcher.Profile(id: "v_a", name: "Ana", vector: unit([1, 0]))]
        #expect(neural.match([.init(speaker: "S1", vector: [1, 0], rejected: ["v_a"])], profiles: profiles).isEmpty)
        #expect(neural.match([.init(speaker: "S1", vector: [1, 0])], profiles: profiles, taken: [" ana"]).isEmpty)
    }

    @Test func theClassicVoiceIsComparedByScaledDistance() {
        let classic = VoiceMatcher(kind: "classic-pitch-mfcc-20")
        let voice: [Float] = [20] + [Float](repeating: 1, count: 19)
        let profile = VoiceMatcher.Profile(id: "v_a", name: "Ana", vector: classic.normalized(voice))
        // Half a semitone and a little timbre away: the same person.
        var near = voice
        near[0] += 0.5
        near[3] += 1
        #expect(classic.match([.init(speaker: "S1", vector: near)], profiles: [profile]).first?.confident == true)
        // Four semitones and a whole spread of timbre away: at most a suggestion; twice that,
        // someone else.
        var far = voice
        far[0] += 4
        for i in 1..<20 { far[i] += 3 }
        #expect(classic.match([.init(speaker: "S1", vector: far)], profiles: [profile]).first?.confident != true)
        far[0] += 4
        for i in 1..<20 { far[i] += 3 }
        #expect(classic.match([.init(speaker: "S1", vector: far)], profiles: [profile]).isEmpty)
        #expect(classic.normalized([1, 2]).isEmpty)
    }

    @Test func recognizedNamesYieldToRenamesSurviveRelabelsAndCarryActionItemOwners() {
        var state = MeetingState(meetingID: "m_1", title: "t")
        var offset = 0
        func apply(_ data: EventData) {
            offset += 1
            state.apply(MeetingEvent(meetingID: "m_1", offset: offset, timestamp: Date(), data: data))
        }
        let plain = [SpeakerInfo(id: "S1", name: "Speaker 1"), SpeakerInfo(id: "S2", name: "Speaker 2")]
        apply(.speakers(.init(reason: .clustering, speakers: plain)))
        apply(
            .actionItems(
                .init(items: [ActionItemRecord(id: 1, owner: "Speaker 1", task: "Ship it", due: nil, time: 1)])))
        let suggestion = VoiceSuggestion(profile: "v_b", name: "Ben", confidence: 0.5)
        apply(
            .speakers(
                .init(
                    reason: .recognized,
                    speakers: [
                        SpeakerInfo(id: "S1", name: "Ana", profile: "v_a", confidence: 0.8),
                        SpeakerInfo(id: "S2", name: "Speaker 2", suggestion: suggestion),
                    ])))
        #expect(state.speakers.map(\.name) == ["Ana", "Speaker 2"])
        #expect(state.speakers[1].suggestion == suggestion)
        #expect(state.actionItems.first?.owner == "Ana")
        // A later relabel (names learnt from the transcript) keeps a recognized name, and a
        // suggestion beside the name learnt.
        apply(
            .speakers(
                .init(reason: .names, speakers: [SpeakerInfo(id: "S1", name: "Al"), SpeakerInfo(id: "S2", name: "Bo")])
            ))
        #expect(state.speakers.map(\.name) == ["Ana", "Bo"] && state.speakers[1].suggestion == suggestion)
        apply(
            .speakers(
                .init(reason: .rejected, speakers: [SpeakerInfo(id: "S2", name: "Speaker 2", suggestion: suggestion)])))
        #expect(state.speakers[1].suggestion == nil)
        apply(.speakers(.init(reason: .rename, speakers: [SpeakerInfo(id: "S1", name: "Ana Lopez", profile: "v_a")])))
        #expect(state.speakers[0].name == "Ana Lopez" && state.actionItems.first?.owner == "Ana Lopez")
    }
}
