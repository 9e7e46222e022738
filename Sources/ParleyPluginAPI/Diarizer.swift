public import Foundation

/// How many speakers a meeting has, as far as the person who started it knows.
public struct SpeakerCount: Sendable, Hashable, Codable {
    /// The exact number, if known.
    public var exact: Int?
    /// Bounds for an automatic count.
    public var min: Int
    public var max: Int?

    public init(exact: Int? = nil, min: Int = 1, max: Int? = nil) {
        self.exact = exact
        self.min = min
        self.max = max
    }

    /// Why the hints contradict each other, or nil when they do not.
    public var problem: String? {
        if let exact, exact < 1 { return "speakers must be at least 1" }
        if min < 1 { return "min_speakers must be at least 1" }
        if let max, max < min { return "max_speakers (\(max)) is below min_speakers (\(min))" }
        if let exact, exact < min || exact > (max ?? .max) {
            return "speakers (\(exact)) lies outside min_speakers/max_speakers"
        }
        return nil
    }
}

/// One stretch of one speaker's speech. Speakers are numbered from 0 in order of first
/// appearance; two turns may overlap (two people speaking at once).
public struct DiarizedTurn: Sendable, Hashable {
    public var speaker: Int
    public var start: Double
    public var end: Double
    /// A second voice over another speaker's turn, added where the backend found two people
    /// probable; words that both cover go to the other speaker (`overlap: true` on the wire).
    public var overlap: Bool

    public init(speaker: Int, start: Double, end: Double, overlap: Bool = false) {
        self.speaker = speaker
        self.start = start
        self.end = end
        self.overlap = overlap
    }
}

/// What a diarization backend found.
public struct DiarizerOutput: Sendable, Hashable {
    public var turns: [DiarizedTurn]
    /// One voice embedding per speaker (index = speaker), when the backend computes them.
    public var embeddings: [[Float]]
    /// Which embedding those are ("campplus-cn-en-common-192"): embeddings of different kinds
    /// are never compared.
    public var embeddingKind: String?

    public init(turns: [DiarizedTurn], embeddings: [[Float]] = [], embeddingKind: String? = nil) {
        self.turns = turns
        self.embeddings = embeddings
        self.embeddingKind = embeddingKind
    }
}

/// A speaker diarization backend: who spoke when in a whole recording. The built-in classic
/// diarizer works on the C front's features inside the pipeline and is not one of these; a
/// backend gets the meeting as a 16 kHz mono 16-bit WAV file once the audio is complete.
public protocol Diarizer: Sendable {
    /// The name users select it by: `--diarizer neural`.
    static var name: String { get }
    /// One line for `parley plugins`.
    static var summary: String { get }

    init(settings: PluginSettings) throws(PluginError)

    /// Whether it can run here, and what it will use.
    func readiness() async -> Readiness

    /// Who spoke when in `file` (16 kHz mono WAV).
    func diarize(file: String, count: SpeakerCount, context: PluginContext) async throws -> DiarizerOutput
}

/// The diarization side of the subprocess protocol, shared by the `neural` and `command`
/// diarizers: one `diarize` request per meeting, to a worker started once and kept in a pool.
public enum SubprocessDiarization {
    private struct Request: Encodable, Sendable {
        struct Audio: Encodable, Sendable {
            var path: String
            var sampleRate: Int
        }
        var audio: Audio
        var speakers: Int?
        var minSpeakers: Int
        var maxSpeakers: Int?
    }

    private struct Response: Decodable, Sendable {
        struct Turn: Decodable, Sendable {
            var speaker: Int
            var start: Double
            var end: Double
            var overlap: Bool?
        }
        var turns: [Turn]
        var embeddings: [[Float]]?
        /// `embedding_kind` on the wire (the worker's decoder converts snake case).
        var embeddingKind: String?
    }

    /// Asks a worker (from `pool`, or started with `launch`) who spoke when in `file`.
    public static func diarize(
        file: String, count: SpeakerCount, launch: SubprocessWorker.Launch, displayName: String,
        context: PluginContext, startTimeout: Duration, timeout: Duration, pool: WorkerPool
    ) async throws -> DiarizerOutput {
        let (worker, handshake) = try await WorkerPool.checkOut(
            from: pool, launch: launch, displayName: displayName, logger: context.logger, startTimeout: startTimeout)
        let request = Request(
            audio: .init(path: file, sampleRate: 16_000), speakers: count.exact, minSpeakers: count.min,
            maxSpeakers: count.max)
        let response: Response
        do {
            response = try await withTimeout(timeout, what: "diarization") {
                try await worker.request("diarize", params: request, as: Response.self)
            }
        } catch {
            await worker.stop()
            throw error
        }
        await pool.give(worker, handshake: handshake)
        var turns: [DiarizedTurn] = []
        for turn in response.turns {
            guard turn.speaker >= 0, turn.start.isFinite, turn.end.isFinite, turn.end >= turn.start else {
                throw PluginError(
                    .protocolViolation,
                    "\(displayName) answered a turn that is not one (speaker \(turn.speaker), \(turn.start)-\(turn.end))"
                )
            }
            turns.append(
                DiarizedTurn(
                    speaker: turn.speaker, start: max(0, turn.start), end: turn.end, overlap: turn.overlap ?? false))
        }
        return DiarizerOutput(
            turns: turns.sorted { ($0.start, $0.end) < ($1.start, $1.end) }, embeddings: response.embeddings ?? [],
            embeddingKind: response.embeddingKind)
    }
}

/// Writes a mono 16-bit WAV file as samples arrive, in bounded memory; the sizes in its header
/// are filled in when it is finished.
public final class WaveFileWriter {
    public let path: String
    private let handle: FileHandle
    private var bytes = 0
    private let sampleRate: Int

    public init(path: String, sampleRate: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: WaveFile.encode([], sampleRate: sampleRate)),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw PluginError(.engine, "cannot write \(path)") }
        self.path = path
        self.handle = handle
        self.sampleRate = sampleRate
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    public func append(_ samples: [Float]) throws {
        let data = WaveFile.pcm16(samples)
        try handle.write(contentsOf: data)
        bytes += data.count
    }

    /// Writes the header's sizes and closes the file.
    public func finish() throws {
        func le32(_ value: Int) -> Data { withUnsafeBytes(of: UInt32(clamping: value).littleEndian) { Data($0) } }
        try handle.seek(toOffset: 4)
        try handle.write(contentsOf: le32(36 + bytes))
        try handle.seek(toOffset: 40)
        try handle.write(contentsOf: le32(bytes))
        try handle.close()
    }
}
