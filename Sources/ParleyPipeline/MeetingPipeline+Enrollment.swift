public import Foundation
public import Logging
import ParleyAudio
import ParleyPluginAPI

extension MeetingPipeline {
    /// One person's voice from a short recording of them alone (enrollment): the classic voice
    /// always, and the diarization backend's too when the pipeline has one, so the profile
    /// matches meetings diarized either way. Keyed by embedding kind; empty when the recording
    /// holds too little voiced speech.
    public func enrollmentVoices(file: String, logger: Logger) async throws -> [String: [Float]] {
        var analyzer = options.analyzer
        let folder = try ScratchFolder("enroll", in: options.scratchDirectory)
        defer { folder.remove() }
        let scratch = folder.path
        let wave =
            diarizer == nil
            ? nil
            : try WaveFileWriter(path: scratch + "/voice.wav", sampleRate: analyzer.features.sampleRate)
        analyzer.emitSamples = wave != nil
        let audio = try await analyzer.analyze(file: file) { event in
            if case .samples(let block, _) = event { try wave?.append(block) }
        }
        var configuration = options.diarization
        configuration.speakers = 1
        configuration.minSpeakers = 1
        configuration.maxSpeakers = 1
        var voices: [String: [Float]] = [:]
        let classic = try SpeakerDiarizer(configuration: configuration).diarize(audio.frames, duration: audio.duration)
        if let kind = classic.voiceKind, let voice = classic.voices.values.first { voices[kind] = voice }
        if let diarizer, let wave {
            try wave.finish()
            do {
                let output = try await diarizer.diarize(
                    file: wave.path, count: SpeakerCount(exact: 1),
                    context: PluginContext(logger: logger, scratchDirectory: scratch))
                // One person: the speaker with the most speech, if the backend found several.
                var speech: [Int: Double] = [:]
                for turn in output.turns { speech[turn.speaker, default: 0] += turn.end - turn.start }
                if let kind = output.embeddingKind, let main = speech.max(by: { $0.value < $1.value })?.key,
                    main < output.embeddings.count, !output.embeddings[main].isEmpty
                {
                    voices[kind] = output.embeddings[main]
                }
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                logger.warning(
                    "enrollment: the diarization backend failed; only the classic voice is kept",
                    metadata: ["error": "\(MeetingPipeline.words(error))"])
            }
        }
        return voices
    }
}
