import Foundation
import ParleyAudio
import ParleySynth
import ParleyTestSupport
import Testing

@Suite struct DiarizationTests {
    static func frames(of signal: [Float]) throws -> FeatureFrames {
        let extractor = try FeatureExtractor()
        try extractor.push(signal)
        return extractor.pull()
    }

    @Test func voiceActivityFindsTheBurstsAndBridgesShortPauses() throws {
        let signal =
            Signals.silence(seconds: 1) + Signals.harmonic(f0: 150, seconds: 1)
            + Signals.silence(seconds: 0.15) + Signals.harmonic(f0: 150, seconds: 0.5)
            + Signals.silence(seconds: 1) + Signals.harmonic(f0: 200, seconds: 0.8) + Signals.silence(seconds: 1)
        let (segments, _) = VoiceActivityDetector.detect(energy: try Self.frames(of: signal).energy)
        #expect(segments.count == 2, "\(segments)")
        guard segments.count == 2 else { return }
        #expect(abs(segments[0].start - 1.0) < 0.05 && abs(segments[0].end - 2.65) < 0.05, "\(segments[0])")
        #expect(abs(segments[1].start - 3.65) < 0.05 && abs(segments[1].end - 4.45) < 0.05, "\(segments[1])")
    }

    /// Live, a talker who never pauses for long is cut into pieces no longer than `maxSegment`,
    /// each at the quietest moment of its second half: here the short dips between "words".
    @Test func longSpeechIsCutAtItsQuietestMomentWhenAskedTo() throws {
        var signal = Signals.silence(seconds: 0.5)
        // Eight "words" of 0.9 s with 0.2 s dips (too short to end a segment) between them.
        for word in 0..<8 {
            signal += Signals.harmonic(f0: 140 + Double(word) * 10, seconds: 0.9) + Signals.silence(seconds: 0.2)
        }
        signal += Signals.silence(seconds: 1)
        let energy = try Self.frames(of: signal).energy
        let (whole, _) = VoiceActivityDetector.detect(energy: energy)
        #expect(whole.count == 1, "without a limit it is one segment: \(whole)")
        var detector = VoiceActivityDetector()
        detector.maxSegment = 3
        let pieces = detector.push(energy) + detector.finish()
        #expect(pieces.count >= 3, "\(pieces)")
        for piece in pieces { #expect(piece.duration <= 3.1, "\(piece)") }
        // Each cut falls in a dip (0.5 + 1.1 k + 0.9 ... + 1.1 k + 1.1), not inside a word.
        for piece in pieces.dropLast() {
            let intoWord = (piece.end - 0.5).truncatingRemainder(dividingBy: 1.1)
            #expect(intoWord > 0.85 || intoWord < 0.05, "cut at \(piece.end) s")
        }
        #expect(abs((pieces.first?.start ?? 0) - 0.5) < 0.05)
        #expect(abs((pieces.last?.end ?? 0) - (0.5 + 8 * 1.1 - 0.2)) < 0.05)
    }

    @Test func voiceActivityFollowsARisingNoiseFloor() throws {
        var random = SystemRandomNumberGenerator()
        let noise = (0..<Int(4 * 16_000)).map { i in Float(i) / 64_000 * 0.02 * Float.random(in: -1...1, using: &random)
        }
        var signal = noise
        let tone = Signals.harmonic(f0: 180, seconds: 0.6)
        for (i, v) in tone.enumerated() { signal[3 * 16_000 + i] += v }
        let (segments, _) = VoiceActivityDetector.detect(energy: try Self.frames(of: signal).energy)
        #expect(segments.count == 1)
        #expect(abs((segments.first?.start ?? 0) - 3.0) < 0.1)
    }

    /// Speech that never pauses (compressed broadcast audio): a voiced signal whose level moves
    /// by only 6 dB between "syllables", for 40 s. The rising floor alone climbs into the dips
    /// and rejected most of it; voiced frames keep it speech. Noise shaped the same way is not.
    @Test func speechThatNeverPausesStaysSpeechAndNoiseLikeItDoesNot() throws {
        let seconds = 40.0
        let voice = Signals.harmonic(f0: 140, seconds: seconds)
        var random = SystemRandomNumberGenerator()
        let noise = (0..<voice.count).map { _ in 0.3 * Float.random(in: -1...1, using: &random) }
        func syllables(_ x: [Float]) -> [Float] {
            x.enumerated().map { i, v in
                let t = Double(i) / 16_000
                return v * Float(0.5 * (1 + 0.5 * sin(2 * Double.pi * 4 * t)))  // 4 per second, 6 dB deep
            }
        }
        for (signal, expected) in [(syllables(voice), true), (syllables(noise), false)] {
            // No silence before it: the floor starts, and stays, in the dips.
            let frames = try Self.frames(of: signal)
            let (segments, _) = VoiceActivityDetector.detect(energy: frames.energy, voicing: frames.voicing)
            let found = segments.reduce(0) { $0 + $1.duration } / seconds
            if expected {
                #expect(found > 0.95, "found \(found) of the continuous voiced signal")
            } else {
                #expect(found < 0.15, "found \(found) of the noise")
            }
        }
    }

    /// A loud noise with no periodicity in it (a breath, paper, a chair) passes the energy
    /// thresholds as easily as a word; with the front's voicing it is not speech, while the
    /// voiced bursts around it, and a short voiced one ("yes"), still are.
    @Test func aLoudNoiseWithoutVoicingIsNotSpeech() throws {
        var random = SystemRandomNumberGenerator()
        let rustle = (0..<Int(0.6 * 16_000)).map { _ in 0.2 * Float.random(in: -1...1, using: &random) }
        let signal =
            Signals.silence(seconds: 1) + Signals.harmonic(f0: 150, seconds: 0.8) + Signals.silence(seconds: 1)
            + rustle + Signals.silence(seconds: 1) + Signals.harmonic(f0: 220, seconds: 0.25)
            + Signals.silence(seconds: 1)
        let frames = try Self.frames(of: signal)
        let (energyOnly, _) = VoiceActivityDetector.detect(energy: frames.energy)
        #expect(energyOnly.count == 3, "without voicing the noise counts: \(energyOnly)")
        let (segments, _) = VoiceActivityDetector.detect(energy: frames.energy, voicing: frames.voicing)
        #expect(segments.count == 2, "\(segments)")
        guard segments.count == 2 else { return }
        #expect(abs(segments[0].start - 1.0) < 0.05 && abs(segments[0].end - 1.8) < 0.05, "\(segments[0])")
        #expect(abs(segments[1].start - 4.4) < 0.05 && abs(segments[1].end - 4.65) < 0.05, "\(segments[1])")
        var off = VoiceActivityConfiguration()
        off.minVoiced = 0
        let (all, _) = VoiceActivityDetector.detect(energy: frames.energy, voicing: frames.voicing, configuration: off)
        #expect(all.count == 3, "minVoiced 0 turns the check off: \(all)")
    }

    @Test func aSoftOnsetBelongsToTheSpeechThatFollowsIt() throws {
        // The voice's frames are at about -17 dB, the recording's level; the noise is far below
        // (-72 dB), so the floor sits at its lowest, 23 dB under the level (-40 dB): speech
        // starts at -28 dB (12 dB above it) and goes on above -33 dB (7 dB). A 150 ms onset
        // rising from 17 to 5 dB below the voice (-34 to -22 dB) crosses -33 dB about 12 ms in
        // and -28 dB about 75 ms in: speech starts at the first, not the second.
        let onset = Signals.harmonic(f0: 150, seconds: 0.15).enumerated().map { i, v in
            v * Float(pow(10, (-17 + 12 * Double(i) / 2_400) / 20))
        }
        var random = SystemRandomNumberGenerator()
        let noise = { (n: Int) in (0..<n).map { _ in 0.0005 * Float.random(in: -1...1, using: &random) } }
        var signal = noise(16_000) + onset + Signals.harmonic(f0: 150, seconds: 0.8) + noise(16_000)
        for i in signal.indices { signal[i] += 0.0005 * Float.random(in: -1...1, using: &random) }
        let (segments, _) = VoiceActivityDetector.detect(energy: try Self.frames(of: signal).energy)
        #expect(segments.count == 1)
        #expect(abs((segments.first?.start ?? 0) - 1.0) < 0.035, "\(segments)")
    }

    /// How loud a recording is says nothing of who speaks: the built-in meeting 24 dB quieter (a
    /// microphone with its gain turned down) or 12 dB louder is diarized the same. Until the
    /// noise floor was bounded relative to the recording's own level, the quieter one had no
    /// speech at all, and real meetings 12 dB louder or quieter lost a third of their accuracy.
    @Test func aQuieterOrLouderRecordingIsDiarizedTheSame() throws {
        let meeting = try GeneratedMeetings.standup()
        let samples = try AudioDecoder(path: meeting.audioPath, targetRate: 16_000).readAll()
        func diarize(decibels: Float) throws -> Diarization {
            let gain = Float(pow(10, Double(decibels) / 20))
            let frames = try Self.frames(of: samples.map { $0 * gain })
            return try SpeakerDiarizer().diarize(frames, duration: Double(samples.count) / 16_000)
        }
        let reference = try diarize(decibels: 0)
        #expect(reference.speakers.count == 3)
        for decibels: Float in [-24, 12] {
            let other = try diarize(decibels: decibels)
            #expect(other.speakers.count == reference.speakers.count, "\(decibels) dB")
            #expect(other.speech.count == reference.speech.count, "\(decibels) dB: \(other.speech)")
            let speech = { (d: Diarization) in d.speech.reduce(0) { $0 + $1.duration } }
            #expect(abs(speech(other) - speech(reference)) < 0.1, "\(decibels) dB")
            #expect(other.turns.count == reference.turns.count, "\(decibels) dB")
            for (a, b) in zip(other.turns, reference.turns) {
                #expect(abs(a.start - b.start) < 0.05 && abs(a.end - b.end) < 0.05, "\(decibels) dB: \(a) \(b)")
            }
        }
    }

    @Test func silenceHasNoSpeakers() throws {
        let result = try SpeakerDiarizer().diarize(try Self.frames(of: Signals.silence(seconds: 5)), duration: 5)
        #expect(result.speakers.isEmpty)
        #expect(result.turns.isEmpty)
    }

    @Test func twoVoicesAtDifferentPitchesAreTwoSpeakers() throws {
        var signal = Signals.silence(seconds: 0.5)
        for turn in 0..<8 {
            signal += Signals.harmonic(f0: turn % 2 == 0 ? 110 : 230, seconds: 1.5) + Signals.silence(seconds: 0.5)
        }
        let result = try SpeakerDiarizer().diarize(try Self.frames(of: signal), duration: Double(signal.count) / 16_000)
        #expect(result.speakers.count == 2)
        #expect(result.turns.count == 8)
        #expect(result.turns.enumerated().allSatisfy { $0.element.speaker == result.turns[$0.offset % 2].speaker })
    }

    @Test func anExactCountIsRespected() throws {
        var signal: [Float] = []
        for f0 in [100.0, 160.0, 250.0, 100.0, 160.0, 250.0] {
            signal += Signals.harmonic(f0: f0, seconds: 2) + Signals.silence(seconds: 0.5)
        }
        let frames = try Self.frames(of: signal)
        let duration = Double(signal.count) / 16_000
        let three = try SpeakerDiarizer(configuration: .init(speakers: 3)).diarize(frames, duration: duration)
        #expect(three.speakers.count == 3)
        let one = try SpeakerDiarizer(configuration: .init(speakers: 1)).diarize(frames, duration: duration)
        #expect(one.speakers.count == 1)
    }

    @Test func invalidCountsAreRejected() throws {
        let frames = try Self.frames(of: Signals.silence(seconds: 1))
        #expect(throws: AudioError.self) {
            try SpeakerDiarizer(configuration: .init(minSpeakers: 4, maxSpeakers: 2)).diarize(frames, duration: 1)
        }
        #expect(throws: AudioError.self) {
            try SpeakerDiarizer(configuration: .init(speakers: 0)).diarize(frames, duration: 1)
        }
    }

    @Test func rttmRoundTrip() throws {
        let turns = [
            SpeakerTurn(speaker: "SPEAKER_00", start: 0.5, end: 2.25),
            SpeakerTurn(speaker: "SPEAKER_01", start: 2.8, end: 4.001),
        ]
        let text = RTTM.format(turns, recording: "team sync")
        #expect(text.hasPrefix("SPEAKER team_sync 1 0.500 1.750 <NA> <NA> SPEAKER_00 <NA> <NA>\n"))
        let back = try RTTM.parse(text)
        #expect(back.count == 2)
        #expect(back[1].speaker == "SPEAKER_01" && abs(back[1].end - 4.001) < 1e-9)
        #expect(throws: AudioError.self) { try RTTM.parse("SPEAKER x 1 abc\n") }
    }
}
