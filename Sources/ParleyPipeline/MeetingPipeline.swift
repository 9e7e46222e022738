import Foundation
public import Logging
import ParleyAudio
public import ParleyEvents
public import ParleyPluginAPI
import Synchronization

/// Runs one meeting: audio -> features and voice activity (streaming) -> transcription of each
/// speech window as soon as it closes, with provisional speakers -> final clustering ->
/// alignment (relabels and splits) -> summarization -> completed, or failed with an `error`
/// event naming the stage. Every step is published to the ``EventSink``.
public struct MeetingPipeline: Sendable {
    public let transcriber: any Transcriber
    public let summarizer: any Summarizer
    /// The diarization backend of the final pass; nil runs the built-in classic diarizer.
    /// Provisional speakers during the upload always come from the classic one.
    public let diarizer: (any Diarizer)?
    public var options: PipelineOptions

    public init(
        transcriber: any Transcriber, summarizer: any Summarizer, diarizer: (any Diarizer)? = nil,
        options: PipelineOptions = .init()
    ) {
        self.transcriber = transcriber
        self.summarizer = summarizer
        self.diarizer = diarizer
        self.options = options
    }

    /// Processes `source`, publishing every event to `sink`. Never throws: a failure is
    /// published (`error`, then `status` failed) and returned in the report. With `voices`, the
    /// final speakers' voices are kept there and the people it knows are named.
    public func run(
        _ source: AudioSource, sink: some EventSink, logger: Logger, voices: (any VoiceDirectory)? = nil
    ) async -> MeetingReport {
        let started = ContinuousClock.now
        let scratch = Result { () throws(ScratchFolderError) in
            try ScratchFolder("meeting", in: options.scratchDirectory)
        }
        defer { try? scratch.get().remove() }
        var report = MeetingReport(
            failure: nil, duration: 0, elapsed: 0, transcriptionTime: 0,
            wordTiming: .engine, speakers: 0, words: 0)
        var session: (any TranscriptionSession)?
        let stage = StageBox()
        do {
            try await sink.publish(.status(.init(stage: .upload, state: .started)))
            let context = PluginContext(logger: logger, scratchDirectory: try scratch.get().path)
            // Both backends are checked before any audio is read, so a misconfigured one fails now.
            if case .notReady(let reason) = await summarizer.readiness() {
                throw PipelineFailure(stage: .summarization, code: "not_ready", message: reason)
            }
            do {
                session = try await transcriber.makeSession(context: context)
            } catch {
                throw PipelineFailure(stage: .transcription, code: "not_ready", message: Self.words(error))
            }
            let run = PipelineRun(
                pipeline: self, sink: sink, session: session!, context: context, started: started, stage: stage,
                voices: voices)
            try await run.execute(source, report: &report)
        } catch {
            let failure =
                (error as? PipelineFailure)
                ?? PipelineFailure(
                    stage: stage.value, code: error is CancellationError ? "cancelled" : "internal",
                    message: Self.words(error))
            report.failure = failure
            logger.info(
                "meeting failed", metadata: ["stage": "\(failure.stage.rawValue)", "error": "\(failure.message)"])
            _ = try? await sink.publish(.error(failure))
            _ = try? await sink.publish(.status(.init(stage: .failed, state: .failed, detail: failure.description)))
        }
        await session?.close()
        report.elapsed = (ContinuousClock.now - started).seconds
        return report
    }

    /// An error in words for people.
    public static func words(_ error: any Error) -> String {
        switch error {
        case let e as PluginError: e.message
        case let e as AudioError: e.description
        case let e as PipelineFailure: e.message
        case is CancellationError: "cancelled"
        default: "\(error)"
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The stage a meeting is in, as far as its status events say.
final class StageBox: Sendable {
    private let stage = Mutex(Stage.upload)
    func set(_ value: Stage) { stage.withLock { $0 = value } }
    var value: Stage { stage.withLock { $0 } }
}
