import Foundation
import ParleyAudio
import Testing

@Suite struct FeatureExtractorTests {
    @Test func aSineLightsUpTheMelBandThatHoldsItsFrequency() throws {
        let extractor = try FeatureExtractor(keepLogMel: true)
        try extractor.push(Signals.sine(frequency: 1_000, seconds: 0.5))
        let frames = extractor.pull()
        #expect(frames.count == (8_000 - 512) / 160 + 1)
        let bands = 40
        let middle = frames.count / 2
        let row = Array(frames.logMel[middle * bands..<(middle + 1) * bands])
        let loudest = row.indices.max { row[$0] < row[$1] }!
        // 40 Slaney bands up to 8 kHz are 1.10 mel apart; 1 kHz (15 mel) lies between the centres of bands 12 and 13.
        #expect((12...13).contains(loudest), "loudest band \(loudest)")
        #expect(row[loudest] - row[2] > 40, "the band at 1 kHz stands far above a band at 100 Hz")
    }

    @Test func energyTracksTheAmplitude() throws {
        let extractor = try FeatureExtractor()
        try extractor.push(Signals.sine(frequency: 440, seconds: 0.3, amplitude: 0.5))
        try extractor.push(Signals.sine(frequency: 440, seconds: 0.3, amplitude: 0.05))
        let frames = extractor.pull()
        let loud = frames.energy[5], quiet = frames.energy[frames.count - 5]
        #expect(abs((loud - quiet) - 20) < 0.5, "a tenth of the amplitude is 20 dB less: \(loud) vs \(quiet)")
    }

    /// The speech energy (the diarizer's) leaves out what lies below 100 Hz (rumble, handling
    /// thumps), and keeps the rest exactly: a tone above it has the frame's whole energy.
    @Test func theSpeechEnergyLeavesOutRumbleAndKeepsTheRest() throws {
        func energies(_ hz: Double) throws -> (whole: Float, speech: Float) {
            let extractor = try FeatureExtractor()
            try extractor.push(Signals.sine(frequency: hz, seconds: 0.3, amplitude: 0.5))
            let frames = extractor.pull()
            #expect(frames.speechEnergy.count == frames.count)
            return (frames.energy[frames.count / 2], frames.speechEnergy[frames.count / 2])
        }
        #expect(FeatureConfiguration().speechMinFrequency == 100)
        for hz in [300.0, 1_000, 4_000] {
            let (whole, speech) = try energies(hz)
            #expect(abs(whole - speech) < 0.1, "\(hz) Hz: \(whole) dB, speech \(speech) dB")
        }
        let (whole, speech) = try energies(40)
        #expect(whole - speech > 20, "a 40 Hz hum: \(whole) dB, speech \(speech) dB")
        var bad = FeatureConfiguration()
        bad.speechMinFrequency = 9_000
        #expect { try FeatureExtractor(configuration: bad) } throws: { error in
            (error as? AudioError)?.code == .invalidArgument
        }
    }

    @Test(arguments: [90.0, 150.0, 220.0, 310.0])
    func pitchOfAHarmonicTone(f0: Double) throws {
        let extractor = try FeatureExtractor()
        try extractor.push(Signals.harmonic(f0: f0, seconds: 0.5))
        let frames = extractor.pull()
        let voiced = frames.f0.filter { $0 > 0 }.sorted()
        #expect(voiced.count > frames.count * 9 / 10)
        let median = Double(voiced[voiced.count / 2])
        #expect(abs(median - f0) / f0 < 0.02, "estimated \(median) Hz for \(f0) Hz")
    }

    @Test func aStrongSecondHarmonicDoesNotDoubleThePitch() throws {
        let extractor = try FeatureExtractor()
        try extractor.push(Signals.harmonic(f0: 120, seconds: 0.5, secondHarmonic: 2.5))
        let frames = extractor.pull()
        let voiced = frames.f0.filter { $0 > 0 }.sorted()
        #expect(abs(Double(voiced[voiced.count / 2]) - 120) < 3)
    }

    @Test func silenceIsUnvoiced() throws {
        let extractor = try FeatureExtractor()
        try extractor.push(Signals.silence(seconds: 0.3))
        let frames = extractor.pull()
        #expect(frames.count > 0)
        #expect(frames.f0.allSatisfy { $0 == 0 })
        #expect(frames.energy.allSatisfy { $0 <= -99 })
    }

    @Test func pushingInChunksGivesTheSameFramesAsPushingAtOnce() throws {
        let signal = Signals.harmonic(f0: 140, seconds: 1.0) + Signals.sine(frequency: 2_500, seconds: 0.7)
        let whole = try FeatureExtractor(keepLogMel: true)
        try whole.push(signal)
        let expected = whole.pull()

        let chunked = try FeatureExtractor(keepLogMel: true)
        var got = FeatureFrames(configuration: chunked.configuration)
        var random = SystemRandomNumberGenerator()
        var at = 0
        while at < signal.count {
            let n = min(signal.count - at, Int.random(in: 1...3_000, using: &random))
            try chunked.push(Array(signal[at..<at + n]))
            got.append(chunked.pull())
            at += n
        }
        #expect(got.count == expected.count)
        #expect(got.logMel == expected.logMel)
        #expect(got.mfcc == expected.mfcc)
        #expect(got.f0 == expected.f0)
    }

    @Test func invalidConfigurationIsATypedError() {
        var config = FeatureConfiguration()
        config.fftSize = 256  // shorter than the window
        #expect { try FeatureExtractor(configuration: config) } throws: { error in
            (error as? AudioError)?.code == .invalidArgument
        }
    }
}
