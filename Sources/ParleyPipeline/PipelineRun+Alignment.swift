import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPluginAPI
import Synchronization

extension PipelineRun {
    /// Alignment: final labels for every word; segments relabelled or split.
    func align(
        _ transcribed: Transcribed, audio: AnalyzedAudio, diarization: Diarization, report: inout MeetingReport
    ) async throws -> (
        final: [TranscriptSegment], speakers: [SpeakerInfo], labels: [String: String], turns: [SpeakerTurnRecord]
    ) {
        try Task.checkCancellation()
        let alignStart = ContinuousClock.now
        try await publish(.status(.init(stage: .alignment, state: .started)))
        var tracker = transcribed.tracker
        let turns = tracker.adopt(diarization, covering: audio.duration)
        let aligner = Aligner(turns: turns)
        var changes: [SpeakersUpdate.Change] = []
        var replacements: [TranscriptSegment] = []
        var final: [TranscriptSegment] = []
        var nextID = transcribed.nextID
        for segment in transcribed.segments {
            let runs = aligner.split(
                TranscribedSegment(start: segment.start, end: segment.end, text: segment.text, words: segment.words),
                unknown: segment.speaker)
            if runs.count <= 1 {
                var relabelled = segment
                if let speaker = runs.first?.speaker, speaker != segment.speaker {
                    changes.append(.init(segmentID: segment.id, speaker: speaker))
                    relabelled.speaker = speaker
                }
                final.append(relabelled)
            } else {
                for (index, run) in runs.enumerated() {
                    let piece = Self.segment(
                        id: nextID, speaker: run.speaker, words: run.words, replaces: index == 0 ? [segment.id] : nil,
                        wordTiming: segment.wordTiming)
                    nextID += 1
                    replacements.append(piece)
                    final.append(piece)
                }
            }
        }
        let speakers = Self.speakerList(turns: turns)
        try await publish(
            .speakers(.init(reason: .clustering, speakers: speakers, changes: changes, turns: turns.map(\.record))))
        for piece in replacements { try await publish(.transcript(piece)) }
        try await publish(
            .status(
                .init(
                    stage: .alignment, state: .completed,
                    detail: "\(changes.count) relabelled, \(replacements.count) from splits",
                    elapsed: (ContinuousClock.now - alignStart).seconds)))
        report.speakers = speakers.count
        report.words = final.reduce(0) { $0 + $1.words.count }
        return (final, speakers, tracker.mapping, turns.map(\.record))
    }
}
