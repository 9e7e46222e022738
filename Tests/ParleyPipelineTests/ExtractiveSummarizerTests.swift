import Foundation
import ParleyExtractive
import ParleyPluginAPI
import ParleySynth
import Testing

@Suite struct ExtractiveSummarizerTests {
    /// The built-in meeting's script as a perfect transcript, speakers labelled S1-S3 as diarization would.
    static func scriptTranscript() -> (segments: [AttributedSegment], labels: [String: String]) {
        var labels: [String: String] = [:]
        var time = 0.0
        let segments = MeetingScript.standup.turns.enumerated().map { index, turn in
            let label = labels[turn[0]] ?? "S\(labels.count + 1)"
            labels[turn[0]] = label
            defer { time += 5 }
            return AttributedSegment(id: index + 1, speaker: label, start: time, end: time + 4.5, text: turn[1])
        }
        return (segments, labels)
    }

    static func summarize(_ segments: [AttributedSegment]) async throws -> MeetingSummary {
        let participants = Set(segments.map(\.speaker)).sorted().map {
            Participant(id: $0, name: "Speaker \($0.dropFirst())")
        }
        return try await ExtractiveSummarizer(settings: .init()).summarize(
            segments, participants: participants,
            context: PluginContext(logger: Fixtures.logger, scratchDirectory: NSTemporaryDirectory()))
    }

    @Test func findsTheBuiltInMeetingsThreeActionItemsWithOwnersAndDues() async throws {
        let (segments, labels) = Self.scriptTranscript()
        let summary = try await Self.summarize(segments)
        let reference = MeetingScript.standup.actionItems
        #expect(summary.actionItems.count == reference.count)
        for expected in reference {
            let label = try #require(labels[expected.owner])
            let found = summary.actionItems.first { $0.task.lowercased() == expected.text.lowercased() }
            let item = try #require(found, "no item '\(expected.text)' in \(summary.actionItems)")
            // Priya is named when asked, so her label is known by name; the others keep theirs.
            let owner = summary.speakerNames[label] ?? "Speaker \(label.dropFirst())"
            #expect(item.owner == owner || item.owner?.lowercased() == expected.owner)
            #expect(item.due?.lowercased() == expected.due?.lowercased())
        }
        #expect(summary.speakerNames[labels["priya"]!] == "Priya")
        #expect(summary.decisions.contains { $0.text.contains("we drop the old storage format") })
        #expect((3...7).contains(summary.points.count))
        // A request and its acceptance say the same thing: at most one of them is a point.
        let incremental = summary.points.filter { $0.contains("index rebuild incremental") }
        #expect(incremental.count <= 1)
    }

    @Test(arguments: [
        ("I will send the report to finance by Friday.", "send the report to finance", "Friday"),
        ("Okay, I'll update the roadmap tomorrow.", "update the roadmap", "tomorrow"),
        ("Sam, could you please book the room for next week?", "book the room", "next week"),
        ("Dana will draft the contract before the end of the month.", "draft the contract", "the end of the month"),
        ("Action item: migrate the build server.", "migrate the build server", nil),
    ])
    func readsActionItems(sentence: String, task: String, due: String?) async throws {
        let summary = try await Self.summarize([
            AttributedSegment(id: 1, speaker: "S1", start: 3, end: 6, text: sentence)
        ])
        #expect(summary.actionItems.map(\.task) == [task])
        #expect(summary.actionItems.first?.due == due)
        #expect(summary.actionItems.first?.time == 3)
    }

    @Test(arguments: [
        "I think the build is fine.", "Will you be there?", "I will be honest, it is slow.",
        "We talked about the budget.",
        "Read, we drop the old storage format.",
    ])
    func sentencesThatAreNotTasksAreNotActionItems(_ sentence: String) async throws {
        let summary = try await Self.summarize([
            AttributedSegment(id: 1, speaker: "S1", start: 0, end: 2, text: sentence)
        ])
        #expect(summary.actionItems.isEmpty)
        #expect(summary.speakerNames.isEmpty)
    }
}
