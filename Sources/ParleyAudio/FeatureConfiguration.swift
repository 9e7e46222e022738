internal import CAudioFront

/// How the front cuts audio into frames and what it computes for each.
///
/// The defaults (25 ms Hann window in a 512-point FFT, 10 ms hop, 40 Slaney
/// mel bands, 20 MFCC) are the usual speech front ends' and match librosa's
/// `melspectrogram(center=False, n_fft=512, win_length=400, hop_length=160)`.
public struct FeatureConfiguration: Sendable, Hashable, Codable {
    public var sampleRate = 16_000
    public var windowLength = 400
    public var hopLength = 160
    public var fftSize = 512
    public var melBands = 40
    public var mfccCount = 20
    public var minFrequency: Float = 0
    public var maxFrequency: Float = 8_000
    /// Estimate F0 and voicing per frame (the diarizer needs them).
    public var pitch = true
    public var minPitch: Float = 60
    public var maxPitch: Float = 400
    /// Compute MFCC from mel power less a tracked noise floor (spectral subtraction), so that
    /// broadband noise does not wash out the differences between voices. Log-mel is unaffected.
    /// Off, the MFCC are exactly librosa's.
    public var noiseCompensation = true
    /// The speech energy (what the diarizer's voice activity detector reads) counts the
    /// spectrum from this frequency up (Hz). Speech carries little below it, while real rooms
    /// and microphones put rumble, handling thumps, breath on the capsule and mains hum there:
    /// loud enough to pass the detector's thresholds and, being periodic, its voicing check.
    public var speechMinFrequency: Float = 100

    public init() {}

    /// Seconds between frames.
    public var hopDuration: Double { Double(hopLength) / Double(sampleRate) }

    /// The time of frame `index`'s centre, in seconds from the start.
    public func time(ofFrame index: Int) -> Double {
        (Double(index * hopLength) + Double(fftSize) / 2) / Double(sampleRate)
    }

    /// The first frame whose centre is at or after `time`.
    public func frame(at time: Double) -> Int {
        max(0, Int(((time * Double(sampleRate) - Double(fftSize) / 2) / Double(hopLength)).rounded(.up)))
    }

    var cValue: pa_feature_config {
        pa_feature_config(
            sample_rate: Int32(clamping: sampleRate), win_length: Int32(clamping: windowLength),
            hop_length: Int32(clamping: hopLength), n_fft: Int32(clamping: fftSize), n_mels: Int32(clamping: melBands),
            n_mfcc: Int32(clamping: mfccCount), fmin: minFrequency, fmax: maxFrequency, pitch: pitch ? 1 : 0,
            f0_min: minPitch, f0_max: maxPitch, noise_compensation: noiseCompensation ? 1 : 0,
            speech_fmin: speechMinFrequency)
    }
}
