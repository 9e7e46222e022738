internal import CAudioFront
import Foundation

/// Computes features incrementally: push samples as they arrive, pull the
/// frames that are complete. One owner; its FFTW plans are made once, here.
public final class FeatureExtractor {
    private let handle: OpaquePointer
    public let configuration: FeatureConfiguration
    /// Keep log-mel in pulled blocks (MFCC, energy and pitch are always kept).
    public let keepsLogMel: Bool

    public init(configuration: FeatureConfiguration = .init(), keepLogMel: Bool = false) throws(AudioError) {
        _ = Self.wisdomFile
        var error = pa_error()
        var config = configuration.cValue
        guard let handle = pa_extractor_new(&config, &error) else { throw AudioError(error) }
        self.handle = handle
        self.configuration = configuration
        self.keepsLogMel = keepLogMel
    }

    deinit { pa_extractor_free(handle) }

    /// Where FFTW's measured plans are kept between runs, set once per process:
    /// `$PARLEY_FFTW_WISDOM` (empty: nowhere), else `parley/fftw-wisdom` in `$XDG_CACHE_HOME` or
    /// `~/.cache`. Measuring the plans takes about a third of a second, longer than diarizing
    /// five minutes of audio; read from the file, they take nothing. Nil when there is none.
    static let wisdomFile: String? = {
        let environment = ProcessInfo.processInfo.environment
        let path: String
        if let given = environment["PARLEY_FFTW_WISDOM"] {
            guard !given.isEmpty else { return nil }
            path = given
        } else if let cache = environment["XDG_CACHE_HOME"], cache.hasPrefix("/") {
            path = "\(cache)/parley/fftw-wisdom"
        } else if let home = environment["HOME"], !home.isEmpty {
            path = "\(home)/.cache/parley/fftw-wisdom"
        } else {
            return nil
        }
        // A folder that cannot be made only means measuring each time.
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = pa_fftw_wisdom_file(path)
        return path
    }()

    public func push(_ samples: UnsafeBufferPointer<Float>) throws(AudioError) {
        var error = pa_error()
        if pa_extractor_push(handle, samples.baseAddress, samples.count, &error) != 0 { throw AudioError(error) }
    }

    public func push(_ samples: [Float]) throws(AudioError) {
        try samples.withUnsafeBufferPointer { (buffer) throws(AudioError) in try push(buffer) }
    }

    /// Frames completed since the last pull.
    public var readyCount: Int { pa_extractor_ready(handle) }

    /// Computes and returns every frame that is complete.
    public func pull() -> FeatureFrames {
        let start = Int(pa_extractor_frames_done(handle))
        var block = FeatureFrames(configuration: configuration, firstFrame: start)
        let n = readyCount
        guard n > 0 else { return block }
        let c = configuration
        block.energy = [Float](repeating: 0, count: n)
        block.speechEnergy = [Float](repeating: 0, count: n)
        block.mfcc = [Float](repeating: 0, count: n * c.mfccCount)
        if keepsLogMel { block.logMel = [Float](repeating: 0, count: n * c.melBands) }
        if c.pitch {
            block.f0 = [Float](repeating: 0, count: n)
            block.voicing = [Float](repeating: 0, count: n)
        }
        let done = block.energy.withUnsafeMutableBufferPointer { energy in
            block.speechEnergy.withUnsafeMutableBufferPointer { speechEnergy in
                block.mfcc.withUnsafeMutableBufferPointer { mfcc in
                    block.logMel.withUnsafeMutableBufferPointer { logMel in
                        block.f0.withUnsafeMutableBufferPointer { f0 in
                            block.voicing.withUnsafeMutableBufferPointer { voicing in
                                pa_extractor_pull(
                                    handle, n, energy.baseAddress, speechEnergy.baseAddress,
                                    keepsLogMel ? logMel.baseAddress : nil, mfcc.baseAddress,
                                    c.pitch ? f0.baseAddress : nil, c.pitch ? voicing.baseAddress : nil)
                            }
                        }
                    }
                }
            }
        }
        precondition(done == n, "the extractor computed fewer frames than it said were ready")
        block.setCount(n)
        return block
    }
}
