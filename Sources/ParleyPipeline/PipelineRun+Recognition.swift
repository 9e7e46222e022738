import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPluginAPI

extension PipelineRun {
    /// Recognition: the speakers' voices go to the voice directory, and the people it
    /// recognizes are named (`speakers` with reason `recognized`, suggestions included). It runs
    /// after the final clustering, before the summary is made (so action items carry the names),
    /// and, live, after each provisional one (so a speaker is named as soon as there is enough of
    /// their speech). `recognized` holds what was said of whom so far: a later run publishes what
    /// changed, and takes back a name or a suggestion it no longer makes. A directory that fails
    /// costs the names, never the meeting.
    func recognize(
        voices vectors: [String: [Float]], kind: String?, labels: [String: String], turns: [SpeakerTurnRecord],
        speakers: [SpeakerInfo], recognized: inout [String: SpeakerInfo]
    ) async throws -> [SpeakerInfo] {
        guard let directory = voices, let kind, !vectors.isEmpty else { return speakers }
        var speech: [String: Double] = [:]
        for turn in turns { speech[turn.speaker, default: 0] += turn.end - turn.start }
        let found = vectors.compactMap { name, vector -> SpeakerVoice? in
            guard let label = labels[name] else { return nil }
            return SpeakerVoice(speaker: label, vector: vector, speech: speech[label] ?? 0)
        }.sorted { $0.speaker < $1.speaker }
        let matches: [VoiceMatcher.Match]
        do {
            matches = try await directory.recognize(found, kind: kind)
        } catch {
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            context.logger.warning("voice recognition failed", metadata: ["error": "\(error)"])
            return speakers.map { recognized[$0.id] ?? $0 }
        }
        let matched = Dictionary(matches.map { ($0.speaker, $0) }) { first, _ in first }
        var named = speakers
        var changed: [SpeakerInfo] = []
        for index in named.indices {
            let id = named[index].id
            let earlier = recognized[id]
            if let match = matched[id] {
                if match.confident {
                    named[index].profile = match.profile
                    named[index].name = match.name
                    named[index].confidence = match.confidence
                    named[index].suggestion = nil
                } else {
                    named[index].suggestion = VoiceSuggestion(
                        profile: match.profile, name: match.name, confidence: match.confidence)
                }
                recognized[id] = named[index]
            } else if earlier != nil {
                // Said earlier, not any more: the speaker goes back to the pipeline's name.
                recognized[id] = nil
            } else {
                continue
            }
            if earlier.map({ !Self.sameRecognition($0, named[index]) }) ?? true { changed.append(named[index]) }
        }
        if !changed.isEmpty { try await publish(.speakers(.init(reason: .recognized, speakers: changed))) }
        return named
    }

    /// Whether two recognitions say the same of a speaker (the confidence aside, which moves a
    /// little with every clustering).
    static func sameRecognition(_ a: SpeakerInfo, _ b: SpeakerInfo) -> Bool {
        a.name == b.name && a.profile == b.profile && a.suggestion?.profile == b.suggestion?.profile
    }
}
