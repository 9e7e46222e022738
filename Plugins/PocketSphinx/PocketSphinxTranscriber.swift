import CPocketSphinx
import Dispatch
import Foundation
public import ParleyPluginAPI
import Synchronization

/// CMU PocketSphinx 5prealpha, in process through Debian's libpocketsphinx, with the
/// `pocketsphinx-en-us` acoustic model, language model and dictionary. No Python.
///
/// Settings (`[transcriber.pocketsphinx]`): `model_dir` (default
/// `/usr/share/pocketsphinx/model/en-us`), `hmm`, `lm`, `dict` (paths overriding the model
/// directory's `en-us`, `en-us.lm.bin`, `cmudict-en-us.dict`).
public struct PocketSphinxTranscriber: Transcriber {
    public static let name = "pocketsphinx"
    public static let summary = "CMU PocketSphinx in process (libpocketsphinx, pocketsphinx-en-us); offline, weak"

    public let hmm: String
    public let lm: String
    public let dict: String

    public init(settings: PluginSettings) throws(PluginError) {
        let directory = settings.string("model_dir", default: "/usr/share/pocketsphinx/model/en-us")
        hmm = settings.string("hmm") ?? "\(directory)/en-us"
        lm = settings.string("lm") ?? "\(directory)/en-us.lm.bin"
        dict = settings.string("dict") ?? "\(directory)/cmudict-en-us.dict"
    }

    public var capabilities: TranscriberCapabilities {
        .init(wordTimestamps: true, languages: ["en"], preferredWindow: 0, acceptsPrompt: false)
    }

    public func readiness() async -> Readiness {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: hmm, isDirectory: &isDirectory), isDirectory.boolValue else {
            return .notReady("pocketsphinx: no acoustic model at \(hmm) (install Debian's pocketsphinx-en-us)")
        }
        for (what, path) in [("language model", lm), ("dictionary", dict)]
        where !FileManager.default.isReadableFile(atPath: path) {
            return .notReady("pocketsphinx: no \(what) at \(path) (install Debian's pocketsphinx-en-us)")
        }
        return .ready("acoustic model \(hmm), language model \(lm)")
    }

    public func makeSession(context: PluginContext) async throws -> any TranscriptionSession {
        if case .notReady(let reason) = await readiness() { throw PluginError(.notReady, reason) }
        return try await PocketSphinxSession.open(hmm: hmm, lm: lm, dict: dict)
    }
}

/// One decoder, used by one request at a time on a queue of its own (decoding blocks).
final class PocketSphinxSession: TranscriptionSession {
    private struct Handles: @unchecked Sendable {
        let decoder: OpaquePointer
        let config: OpaquePointer
        /// This decoder numbers frames from its first utterance on, not per utterance; this is
        /// where the next utterance's frames start. Utterances are padded to whole frames so
        /// the count stays exact.
        var framesBefore = 0
    }
    private let handles: Mutex<Handles?>
    private let queue = DispatchQueue(label: "parley.pocketsphinx")

    private init(_ handles: Handles) { self.handles = Mutex(handles) }

    static func open(hmm: String, lm: String, dict: String) async throws -> PocketSphinxSession {
        let queue = DispatchQueue(label: "parley.pocketsphinx.open")
        let handles: Handles = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                guard let config = parley_ps_config(hmm, lm, dict, "/dev/null") else {
                    continuation.resume(throwing: PluginError(.notReady, "pocketsphinx: the model paths were rejected"))
                    return
                }
                guard let decoder = ps_init(config) else {
                    cmd_ln_free_r(config)
                    continuation.resume(
                        throwing: PluginError(.notReady, "pocketsphinx: the decoder did not start (model unreadable?)"))
                    return
                }
                continuation.resume(returning: Handles(decoder: decoder, config: config))
            }
        }
        return PocketSphinxSession(handles)
    }

    func transcribe(_ audio: AudioSegment, options: TranscriptionOptions) async throws -> Transcription {
        guard audio.sampleRate == 16_000 else {
            throw PluginError(.engine, "pocketsphinx: audio must be 16 kHz, got \(audio.sampleRate) Hz")
        }
        let cancelled = Atomic<Bool>(false)
        var samples = audio.samples.map(WaveFile.int16)
        samples.append(contentsOf: repeatElement(0, count: (160 - samples.count % 160) % 160))
        let pcm = samples
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async { [self] in
                    continuation.resume(with: Result { try decode(pcm, offset: audio.offset, cancelled: cancelled) })
                }
            }
        } onCancel: {
            cancelled.store(true, ordering: .relaxed)
        }
    }

    /// Feeds the audio in 0.25 s pieces so a cancellation is seen promptly.
    private func decode(_ pcm: [Int16], offset: Double, cancelled: borrowing Atomic<Bool>) throws -> Transcription {
        try handles.withLock { handles in
            guard let current = handles else { throw PluginError(.unavailable, "pocketsphinx: the session is closed") }
            let ps = current.decoder
            let base = current.framesBefore
            handles?.framesBefore += pcm.count / 160
            guard ps_start_utt(ps) == 0 else { throw PluginError(.engine, "pocketsphinx: cannot start an utterance") }
            var position = 0
            while position < pcm.count {
                if cancelled.load(ordering: .relaxed) {
                    ps_end_utt(ps)
                    throw CancellationError()
                }
                let n = min(4_000, pcm.count - position)
                let status = pcm.withUnsafeBufferPointer { ps_process_raw(ps, $0.baseAddress! + position, n, 0, 0) }
                guard status >= 0 else {
                    ps_end_utt(ps)
                    throw PluginError(.engine, "pocketsphinx: decoding failed")
                }
                position += n
            }
            guard ps_end_utt(ps) == 0 else { throw PluginError(.engine, "pocketsphinx: cannot end the utterance") }
            let logmath = ps_get_logmath(ps)
            var words: [Word] = []
            var seg = ps_seg_iter(ps)
            while let current = seg {
                let raw = String(cString: ps_seg_word(current))
                var sf: Int32 = 0
                var ef: Int32 = 0
                ps_seg_frames(current, &sf, &ef)
                let probability = logmath_exp(logmath, ps_seg_prob(current, nil, nil, nil))
                if let word = Self.spoken(raw) {
                    words.append(
                        Word(
                            word: word, start: offset + Double(Int(sf) - base) / 100,
                            end: offset + Double(Int(ef) + 1 - base) / 100,
                            confidence: min(1, max(0, probability))))
                }
                seg = ps_seg_next(current)
            }
            guard let first = words.first, let last = words.last else { return Transcription(segments: []) }
            let text = words.map(\.word).joined(separator: " ")
            return Transcription(segments: [
                TranscribedSegment(start: first.start, end: last.end, text: text, words: words)
            ])
        }
    }

    /// The word as spoken: silences, fillers and noise markers dropped, "word(2)" variants named plainly.
    static func spoken(_ raw: String) -> String? {
        if raw.hasPrefix("<") || raw.hasPrefix("[") || raw.hasPrefix("++") { return nil }
        if let paren = raw.firstIndex(of: "(") { return String(raw[..<paren]) }
        return raw
    }

    func close() async {
        handles.withLock { handles in
            if let h = handles {
                ps_free(h.decoder)
                cmd_ln_free_r(h.config)
            }
            handles = nil
        }
    }

    deinit {
        handles.withLock { handles in
            if let h = handles {
                ps_free(h.decoder)
                cmd_ln_free_r(h.config)
            }
        }
    }
}
