import Foundation
import ParleyAudio
import ParleyEvents
import ParleyPipeline
import ParleyPluginAPI
import Testing

@Suite struct EventProtocolTests {
    @Test func anEventIsOneJSONObjectWithTypeOffsetTimestampAndData() throws {
        let event = MeetingEvent(
            meetingID: "m_1", offset: 42, timestamp: Date(timeIntervalSince1970: 1_795_948_502.123),
            data: .transcript(
                TranscriptSegment(
                    id: 7, speaker: "S2", start: 1.5, end: 2.25, text: "Hello there.",
                    words: [Word(word: "Hello", start: 1.5, end: 1.9, confidence: 0.9)])))
        let object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as? [String: Any])
        #expect(object["type"] as? String == "transcript")
        #expect(object["meeting_id"] as? String == "m_1")
        #expect(object["offset"] as? Int == 42)
        #expect(object["timestamp"] as? String == "2026-11-29T10:35:02.123Z")
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["speaker"] as? String == "S2")
        #expect((data["words"] as? [[String: Any]])?.first?["confidence"] as? Double == 0.9)
        #expect(try JSONDecoder().decode(MeetingEvent.self, from: JSONEncoder().encode(event)) == event)
    }

    @Test(arguments: [
        EventData.status(.init(stage: .transcription, state: .progress, progress: 0.5)),
        .uploadProgress(.init(bytes: 10, total: 20, seconds: 1)),
        .speakers(
            .init(
                reason: .clustering, speakers: [.init(id: "S1", name: "Speaker 1")],
                changes: [.init(segmentID: 3, speaker: "S1")])),
        .summary(.init(points: ["a"], decisions: [Decision(text: "b", time: 2)], summarizer: "extractive")),
        .actionItems(
            .init(items: [ActionItemRecord(id: 1, owner: "Tom", task: "write notes", due: "Monday", time: 3)])),
        .error(PipelineFailure(stage: .upload, code: "format", message: "not audio")),
    ])
    func everyTypeRoundTrips(_ data: EventData) throws {
        let event = MeetingEvent(meetingID: "m", offset: 1, timestamp: Date(timeIntervalSince1970: 0), data: data)
        let decoded = try JSONDecoder().decode(MeetingEvent.self, from: JSONEncoder().encode(event))
        #expect(decoded == event)
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as? [String: Any]
        #expect(object?["type"] as? String == data.type)
    }

    @Test func anUnknownTypeIsRejected() {
        let json = #"{"type":"nonsense","meeting_id":"m","offset":1,"timestamp":"2026-11-29T10:15:02.123Z","data":{}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MeetingEvent.self, from: Data(json.utf8)) }
    }

    @Test func stateFollowsReplacementsRelabelsAndStatus() {
        var state = MeetingState(meetingID: "m", title: "t")
        func apply(_ offset: Int, _ data: EventData) {
            state.apply(MeetingEvent(meetingID: "m", offset: offset, timestamp: Date(), data: data))
        }
        let words = [Word(word: "a", start: 0, end: 1, confidence: 1)]
        apply(1, .transcript(.init(id: 1, speaker: "S1", start: 0, end: 1, text: "a", words: words)))
        apply(2, .transcript(.init(id: 2, speaker: "S1", start: 2, end: 3, text: "b c", words: words)))
        apply(
            3,
            .speakers(
                .init(
                    reason: .clustering, speakers: [.init(id: "S2", name: "Speaker 2")],
                    changes: [.init(segmentID: 1, speaker: "S2")])))
        apply(4, .transcript(.init(id: 3, speaker: "S1", start: 2, end: 2.5, text: "b", words: words, replaces: [2])))
        apply(5, .transcript(.init(id: 4, speaker: "S2", start: 2.5, end: 3, text: "c", words: words)))
        // A provisional segment, then one with no words that only takes it away.
        var partial = TranscriptSegment(id: 5, speaker: "S1", start: 4, end: 5, text: "d", words: words)
        partial.provisional = true
        apply(6, .transcript(partial))
        #expect(state.segments.map(\.id) == [1, 3, 4, 5])
        apply(7, .transcript(.init(id: 6, speaker: "S1", start: 0, end: 0, text: "", words: [], replaces: [5])))
        apply(8, .status(.init(stage: .completed, state: .completed)))
        #expect(state.segments.map(\.id) == [1, 3, 4])
        #expect(state.segments.map(\.speaker) == ["S2", "S1", "S2"])
        #expect(state.offset == 8)
        #expect(state.isFinished)
        #expect(state.name(of: "S2") == "Speaker 2")
    }

    @Test func aCorrectionReplacesItsSegmentRetimesItsWordsAndOutlivesARelabel() throws {
        var state = MeetingState(meetingID: "m", title: "t")
        func apply(_ offset: Int, _ data: EventData) {
            state.apply(MeetingEvent(meetingID: "m", offset: offset, timestamp: Date(), data: data))
        }
        let heard = [("we", 1.0, 1.2), ("ship", 1.2, 1.6), ("on", 1.6, 1.7), ("fry", 1.7, 2.0), ("day", 2.0, 2.4)]
        let words = heard.map { Word(word: $0.0, start: $0.1, end: $0.2, confidence: 0.6) }
        let segment = TranscriptSegment(
            id: 7, speaker: "S1", start: 1, end: 2.4, text: "we ship on fry day", words: words)
        apply(1, .transcript(segment))
        apply(2, .transcript(.init(id: 8, speaker: "S1", start: 3, end: 4, text: "ok", words: words)))

        // Words kept keep their times; "Friday." replaces "fry day" over the same span.
        let fixed = segment.corrected(text: "We ship on Friday.", speaker: "S2", by: "ana")
        #expect(fixed.id == 7 && fixed.replaces == [7] && fixed.speaker == "S2")
        #expect(fixed.corrected == SegmentCorrection(by: "ana", text: true, speaker: true))
        #expect(fixed.words.map(\.word) == ["We", "ship", "on", "Friday."])
        #expect(fixed.words.map(\.start) == [1.0, 1.2, 1.6, 1.7])
        #expect(fixed.words[3].end == 2.4 && fixed.words[3].confidence == 1)
        #expect(fixed.words[1].confidence == 0.6 && fixed.wordTiming == .estimated)
        // Only the speaker: the words stay as they were.
        let moved = segment.corrected(text: nil, speaker: "S3", by: "bo")
        #expect(moved.words == words && moved.corrected == SegmentCorrection(by: "bo", text: false, speaker: true))

        apply(3, .transcript(fixed))
        #expect(state.segments.map(\.id) == [7, 8])
        #expect(state.segments[0].text == "We ship on Friday." && state.segments[0].speaker == "S2")
        // The pipeline's later relabel moves the uncorrected segment, not the corrected one.
        apply(
            4,
            .speakers(
                .init(
                    reason: .clustering, speakers: [.init(id: "S2", name: "B"), .init(id: "S3", name: "C")],
                    changes: [.init(segmentID: 7, speaker: "S3"), .init(segmentID: 8, speaker: "S3")])))
        #expect(state.segments.map(\.speaker) == ["S2", "S3"])
        // A text-only correction of the other one lets the pipeline still move it.
        apply(5, .transcript(state.segments[1].corrected(text: "Okay.", speaker: nil, by: "ana")))
        apply(6, .speakers(.init(reason: .clustering, speakers: [], changes: [.init(segmentID: 8, speaker: "S4")])))
        #expect(state.segments[1].speaker == "S4" && state.segments[1].text == "Okay.")
        #expect(state.segments[1].corrected == SegmentCorrection(by: "ana", text: true, speaker: false))
    }

    @Test func theLogNumbersEventsWithoutGapsAndEndsItsStreams() async throws {
        let log = MeetingEventLog(meetingID: "m", title: "t", firstOffset: 5)
        let stream = log.events()
        try await log.publish(.status(.init(stage: .upload, state: .started)))
        try await log.publish(.status(.init(stage: .completed, state: .completed)))
        var offsets: [Int] = []
        for await event in stream { offsets.append(event.offset) }
        #expect(offsets == [5, 6])
        #expect(log.history.map(\.offset) == [5, 6])
        // A subscriber after the end gets an ended stream, not a hang.
        var late = 0
        for await _ in log.events() { late += 1 }
        #expect(late == 0)
    }
}
