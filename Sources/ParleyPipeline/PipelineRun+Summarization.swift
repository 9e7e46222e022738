import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPluginAPI
import Synchronization

extension PipelineRun {
    /// Summarization: the summary, decisions and action items, then `completed`.
    func summarize(
        _ final: [TranscriptSegment], speakers: [SpeakerInfo], audio: AnalyzedAudio, report: inout MeetingReport
    ) async throws {
        var speakers = speakers
        try Task.checkCancellation()
        let summaryStart = ContinuousClock.now
        try await publish(.status(.init(stage: .summarization, state: .started)))
        let attributed = final.sorted { $0.start < $1.start }.map {
            AttributedSegment(id: $0.id, speaker: $0.speaker, start: $0.start, end: $0.end, text: $0.text)
        }
        let summarizer = pipeline.summarizer
        let participants = speakers.map { Participant(id: $0.id, name: $0.name) }
        let context = self.context
        let summary: MeetingSummary
        do {
            summary = try await withTimeout(.seconds(options.timeouts.summarization), what: "summarization") {
                try await summarizer.summarize(attributed, participants: participants, context: context)
            }
        } catch {
            throw PipelineFailure(
                stage: .summarization, code: Self.code(error), message: MeetingPipeline.words(error))
        }
        if !summary.speakerNames.isEmpty {
            // A recognized voice keeps its name; the others take the names the transcript gives.
            speakers = speakers.map { speaker in
                guard speaker.profile == nil, let learnt = summary.speakerNames[speaker.id] else { return speaker }
                var named = speaker
                named.name = learnt
                return named
            }
            try await publish(.speakers(.init(reason: .names, speakers: speakers)))
        }
        try await publish(
            .summary(
                .init(points: summary.points, decisions: summary.decisions, summarizer: type(of: summarizer).name)))
        try await publish(
            .actionItems(
                .init(
                    items: summary.actionItems.enumerated().map { index, item in
                        ActionItemRecord(
                            id: index + 1, owner: item.owner, task: item.task, due: item.due, time: item.time)
                    })))
        try await publish(
            .status(
                .init(
                    stage: .summarization, state: .completed,
                    detail: "\(summary.points.count) points, \(summary.actionItems.count) action items",
                    elapsed: (ContinuousClock.now - summaryStart).seconds)))
        try await publish(
            .status(
                .init(
                    stage: .completed, state: .completed,
                    detail: String(
                        format: "%.1f s of audio, %d speakers, %d words", audio.duration, speakers.count, report.words),
                    elapsed: (ContinuousClock.now - started).seconds)))
    }
}
