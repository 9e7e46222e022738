import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPluginAPI

extension PipelineRun {
    /// Recognition: the final speakers' voices go to the voice directory, and the people it
    /// recognizes are named (`speakers` with reason `recognized`, suggestions included) before
    /// the summary is made, so action items carry the names. A directory that fails costs the
    /// names, never the meeting.
    func recognize(
        _ diarization: Diarization, labels: [String: String], turns: [SpeakerTurnRecord], speakers: [SpeakerInfo]
    ) async throws -> [SpeakerInfo] {
        guard let directory = voices, let kind = diarization.voiceKind, !diarization.voices.isEmpty else {
            return speakers
        }
        var speech: [String: Double] = [:]
        for turn in turns { speech[turn.speaker, default: 0] += turn.end - turn.start }
        let found = diarization.voices.compactMap { name, vector -> SpeakerVoice? in
            guard let label = labels[name] else { return nil }
            return SpeakerVoice(speaker: label, vector: vector, speech: speech[label] ?? 0)
        }.sorted { $0.speaker < $1.speaker }
        let matches: [VoiceMatcher.Match]
        do {
            matches = try await directory.recognize(found, kind: kind, speakers: speakers)
        } catch {
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            context.logger.warning("voice recognition failed", metadata: ["error": "\(error)"])
            return speakers
        }
        guard !matches.isEmpty else { return speakers }
        var named = speakers
        var changed: [SpeakerInfo] = []
        for match in matches {
            guard let index = named.firstIndex(where: { $0.id == match.speaker }) else { continue }
            if match.confident {
                named[index].name = match.name
                named[index].profile = match.profile
                named[index].confidence = match.confidence
                named[index].suggestion = nil
            } else {
                named[index].suggestion = VoiceSuggestion(
                    profile: match.profile, name: match.name, confidence: match.confidence)
            }
            changed.append(named[index])
        }
        try await publish(.speakers(.init(reason: .recognized, speakers: changed)))
        return named
    }
}
