import Foundation
import Synchronization

/// A recording decoded and turned into features.
public struct AnalyzedAudio: Sendable {
    public var info: AudioSourceInfo
    public var frames: FeatureFrames
    /// Samples at the analysis rate.
    public var sampleCount: Int
    public var duration: Double { Double(sampleCount) / Double(frames.configuration.sampleRate) }
}

/// What ``AudioAnalyzer/analyze(chunks:expectedLength:spoolPath:onEvent:)`` reports, in order:
/// the header once, then blocks of frames as the audio arrives.
public enum AnalysisEvent: Sendable {
    case opened(AudioSourceInfo)
    case frames(FeatureFrames, samplesSoFar: Int)
    /// Decoded samples at the analysis rate, before the frames computed from them; sent only
    /// when ``AudioAnalyzer/emitSamples`` is set. `first` is the index of the first sample.
    case samples([Float], first: Int)
    /// Something people should know while it lasts (decoding waits for the end of an upload
    /// whose container keeps its index at the end).
    case notice(String)
}

/// Decode -> downmix -> resample -> features, streamed in blocks so that
/// memory stays bounded by the features, never by the audio.
public struct AudioAnalyzer: Sendable {
    public var features: FeatureConfiguration
    public var quality: ResamplerQuality
    /// Decode a file shorter than its header declares instead of failing.
    public var allowTruncated: Bool
    public var keepLogMel: Bool
    /// Samples decoded per step.
    public var blockSize: Int
    /// Whether the streaming analysis also reports the decoded samples (for transcription).
    public var emitSamples = false

    public init(
        features: FeatureConfiguration = .init(), quality: ResamplerQuality = .fastest, allowTruncated: Bool = false,
        keepLogMel: Bool = false, blockSize: Int = 32_768
    ) {
        self.features = features
        self.quality = quality
        self.allowTruncated = allowTruncated
        self.keepLogMel = keepLogMel
        self.blockSize = blockSize
    }

    /// Analyses a file, calling `onBlock` with each block of frames as it is computed.
    public func analyze(
        path: String, onBlock: (FeatureFrames) throws -> Void = { _ in }
    ) throws -> AnalyzedAudio {
        let decoder = try AudioDecoder(
            path: path, targetRate: features.sampleRate, quality: quality, allowTruncated: allowTruncated)
        return try run(decoder) { event in
            if case .frames(let block, _) = event { try onBlock(block) }
        }
    }

    /// Analyses bytes that arrive in chunks (an upload) while they arrive,
    /// calling `onEvent` with the header and then each block of frames.
    ///
    /// The chunks are spooled to a file (`spoolPath`, or an anonymous temporary
    /// file, so memory stays bounded) and decoded on a thread of its own,
    /// because libsndfile's reads block until bytes come. If anything fails or
    /// the task is cancelled, the spool is aborted and both sides end.
    public func analyze<Chunks: AsyncSequence & Sendable>(
        chunks: Chunks, expectedLength: Int64? = nil, spoolPath: String? = nil,
        onEvent: (AnalysisEvent) async throws -> Void = { _ in }
    ) async throws -> AnalyzedAudio where Chunks.Element: Collection<UInt8> {
        let spool = try ByteSpool(path: spoolPath, expectedLength: expectedLength)
        let (events, continuation) = AsyncThrowingStream<AnalysisEvent, any Error>.makeStream()
        let decoding = Thread { [self] in
            do {
                let decoder = try AudioDecoder(
                    spool: spool, targetRate: features.sampleRate, quality: quality, allowTruncated: allowTruncated
                ) { continuation.yield(.notice($0)) }
                _ = try run(decoder, accumulate: false) { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        decoding.name = "parley-decode"
        decoding.start()
        return try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        for try await chunk in chunks {
                            try Task.checkCancellation()
                            try spool.append(chunk)
                        }
                        spool.finish()
                    } catch {
                        spool.abort()
                        throw error
                    }
                }
                var collected = Collected(features: features)
                do {
                    for try await event in events {
                        collected.add(event)
                        try await onEvent(event)
                    }
                    try await group.waitForAll()
                } catch {
                    spool.abort()
                    // Let the decoding thread see the abort and end before the spool goes.
                    do { for try await _ in events {} } catch {}
                    // When the bytes stopped because their source failed (a stalled or broken
                    // upload), that is the reason to report, not the decoder's "aborted". The
                    // feeder failing only because of the abort above is not such a reason.
                    group.cancelAll()
                    do {
                        try await group.waitForAll()
                    } catch let source
                        where !(source is CancellationError) && (source as? AudioError)?.code != .aborted
                    {
                        throw source
                    } catch {}
                    throw error
                }
                guard let info = collected.info else {
                    throw AudioError(.empty, "upload: the stream ended before any audio arrived")
                }
                return AnalyzedAudio(info: info, frames: collected.frames, sampleCount: collected.samples)
            }
        } onCancel: {
            spool.abort()
        }
    }

    /// Analyses a file on a thread of its own, calling `onEvent` with the header and then each
    /// block of frames (and samples, with ``emitSamples``) as they are computed. Cancelling
    /// the task stops the decoding at the next block.
    public func analyze(
        file path: String, onEvent: (AnalysisEvent) async throws -> Void = { _ in }
    ) async throws -> AnalyzedAudio {
        let stop = Mutex(false)
        let (events, continuation) = AsyncThrowingStream<AnalysisEvent, any Error>.makeStream()
        let decoding = Thread { [self] in
            do {
                let decoder = try AudioDecoder(
                    path: path, targetRate: features.sampleRate, quality: quality, allowTruncated: allowTruncated)
                _ = try run(decoder, accumulate: false) { event in
                    if stop.withLock({ $0 }) { throw CancellationError() }
                    continuation.yield(event)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        decoding.name = "parley-decode"
        decoding.start()
        return try await withTaskCancellationHandler {
            var collected = Collected(features: features)
            do {
                for try await event in events {
                    collected.add(event)
                    try await onEvent(event)
                }
            } catch {
                stop.withLock { $0 = true }
                do { for try await _ in events {} } catch {}
                throw error
            }
            guard let info = collected.info else { throw AudioError(.empty, "\(path): no audio") }
            return AnalyzedAudio(info: info, frames: collected.frames, sampleCount: collected.samples)
        } onCancel: {
            stop.withLock { $0 = true }
        }
    }

    /// The shared decode loop: read a block, push it, pull the frames.
    private func run(
        _ decoder: AudioDecoder, accumulate: Bool = true, emit: (AnalysisEvent) throws -> Void
    ) throws -> AnalyzedAudio {
        let extractor = try FeatureExtractor(configuration: features, keepLogMel: keepLogMel)
        try emit(.opened(decoder.info))
        var frames = FeatureFrames(configuration: features)
        var buffer = [Float](repeating: 0, count: max(1024, blockSize))
        var samples = 0
        while true {
            let n = try buffer.withUnsafeMutableBufferPointer { (all) throws(AudioError) -> Int in
                let n = try decoder.read(into: all)
                if n > 0 { try extractor.push(UnsafeBufferPointer(rebasing: all[0..<n])) }
                return n
            }
            if n == 0 { break }
            if emitSamples { try emit(.samples(Array(buffer[0..<n]), first: samples)) }
            samples += n
            let block = extractor.pull()
            if block.count > 0 {
                try emit(.frames(block, samplesSoFar: samples))
                if accumulate { frames.append(block) }
            }
        }
        return AnalyzedAudio(info: decoder.info, frames: frames, sampleCount: samples)
    }
}

/// What the streaming analyses gather from the events as they pass.
private struct Collected {
    var info: AudioSourceInfo?
    var frames: FeatureFrames
    var samples = 0

    init(features: FeatureConfiguration) { frames = FeatureFrames(configuration: features) }

    mutating func add(_ event: AnalysisEvent) {
        switch event {
        case .opened(let opened): info = opened
        case .frames(let block, let total):
            frames.append(block)
            samples = total
        case .samples, .notice: break
        }
    }
}
