/// Per-frame features of a recording (or of the part that has arrived so far).
///
/// Stored flat, frame-major, to keep a one-hour meeting in a few tens of
/// megabytes: log-mel is kept only when asked for.
public struct FeatureFrames: Sendable {
    public let configuration: FeatureConfiguration
    /// Index of the first frame held here within the whole recording.
    public var firstFrame: Int
    public private(set) var count = 0
    /// Log energy per frame, dB.
    public var energy: [Float] = []
    /// The same from `configuration.speechMinFrequency` up: what the diarizer's voice activity
    /// detector reads (the recognizer's windows read `energy`).
    public var speechEnergy: [Float] = []
    /// `count * configuration.mfccCount` MFCCs.
    public var mfcc: [Float] = []
    /// `count * configuration.melBands` log-mel values in dB, if kept.
    public var logMel: [Float] = []
    /// F0 in Hz per frame, 0 where unvoiced (when pitch is on).
    public var f0: [Float] = []
    /// Normalised autocorrelation peak per frame, 0...1 (when pitch is on).
    public var voicing: [Float] = []

    public init(configuration: FeatureConfiguration, firstFrame: Int = 0) {
        self.configuration = configuration
        self.firstFrame = firstFrame
    }

    /// Seconds covered, from the first sample to the end of the last frame hop.
    public var duration: Double { Double(count) * configuration.hopDuration }

    public func mfcc(ofFrame index: Int) -> ArraySlice<Float> {
        let n = configuration.mfccCount
        return mfcc[index * n..<(index + 1) * n]
    }

    /// Appends another block that directly follows this one.
    public mutating func append(_ other: FeatureFrames) {
        precondition(other.firstFrame == firstFrame + count, "feature blocks must be contiguous")
        count += other.count
        energy += other.energy
        speechEnergy += other.speechEnergy
        mfcc += other.mfcc
        logMel += other.logMel
        f0 += other.f0
        voicing += other.voicing
    }

    mutating func setCount(_ n: Int) { count = n }
}
