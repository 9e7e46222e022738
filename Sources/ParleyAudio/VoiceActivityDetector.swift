/// A stretch of speech found by the voice activity detector.
public struct SpeechSegment: Sendable, Hashable, Codable {
    /// Frames [startFrame, endFrame) of the recording's feature frames.
    public var startFrame: Int
    public var endFrame: Int
    /// Seconds.
    public var start: Double
    public var end: Double
    public var duration: Double { end - start }

    public init(startFrame: Int, endFrame: Int, start: Double, end: Double) {
        self.startFrame = startFrame
        self.endFrame = endFrame
        self.start = start
        self.end = end
    }
}

/// Settings of the energy-based voice activity detector.
public struct VoiceActivityConfiguration: Sendable, Hashable, Codable {
    /// Speech starts when the energy rises this far above the noise floor (dB).
    public var onsetAboveFloor: Float = 12
    /// Speech continues while the energy stays this far above the floor (dB): the hysteresis.
    public var offsetAboveFloor: Float = 7
    /// The floor never goes below the recording's level less this (dB): between words a
    /// headset or a room leaves breaths, rustles and hum a little above the noise, which a
    /// floor that followed the noise all the way down would let through as speech. The level is
    /// the `levelQuantile` of the energy of the recording's clearly voiced frames (`voicedFrame`;
    /// of all frames without voicing): over the whole recording in ``detect(energy:voicing:configuration:features:)``,
    /// over the frames so far when pushed. Being relative to the recording's own level, the
    /// decisions do not change when a recording is made louder or quieter.
    public var floorBelowLevel: Float = 23
    public var levelQuantile: Float = 0.95
    /// The level is at most this far above the same quantile of all the frames (dB): a few loud
    /// voiced sounds (a cough, a laugh, a word said close to the microphone) must not make the
    /// rest of a voice, hoarse or soft, count as quiet.
    public var levelAboveAll: Float = 6
    /// Nor below this (dB): digital silence would otherwise make any whisper speech.
    public var minimumFloor: Float = -100
    /// When set, the floor may always fall this low (dB), however loud the recording: the bound
    /// is the lower of this and the level's, and this alone until the level is known (the
    /// recording has had `knownLevelAfter` seconds of clearly voiced frames). A quiet recording
    /// then gets the relative bound, a usual one the absolute bound; nil: the level's alone.
    public var absoluteFloor: Float?
    public var knownLevelAfter: Double = 0.5
    /// How fast the floor may rise, dB per second, so that it follows a noise that grows louder
    /// but not the speech itself.
    public var floorRise: Float = 2
    /// A clearly periodic frame (voicing at least this, 0...1) starts speech at only
    /// `voicedOnsetAboveFloor` dB above the floor: in speech that never pauses (compressed
    /// broadcast audio, a far-field room) the rising floor climbs into the dips between
    /// syllables, within a few dB of the vowels, and only their periodicity tells them from
    /// noise. 0 turns it off.
    public var voicedOnset: Float = 0.85
    public var voicedOnsetAboveFloor: Float = 6
    /// Runs of speech shorter than this are dropped (seconds).
    public var minSpeech: Double = 0.12
    /// A run of speech needs at least this much clearly voiced sound (seconds of frames whose
    /// voicing is at least `voicedFrame`): every word has a vowel, while breaths, rustling
    /// paper, a keyboard or a door loud enough to pass the energy thresholds are not periodic.
    /// On real meetings (AMI headset mixes) most of the false alarms were such noises. 0 turns
    /// it off; without voicing from the front (pitch off) nothing is checked.
    public var minVoiced: Double = 0.15
    public var voicedFrame: Float = 0.7
    /// Pauses shorter than this do not end a segment (seconds).
    public var minSilence: Double = 0.4
    /// How far back a segment's start may move while the energy stays above the offset
    /// threshold (seconds).
    public var maxOnsetExtension: Double = 0.3
    /// Widen each segment by this much on both sides (seconds): energy onsets lag the voice.
    public var padding: Double = 0.02

    public init() {}
}

/// Energy-based voice activity detection with an adaptive noise floor,
/// hysteresis, and minimum speech and silence durations.
///
/// It runs incrementally: ``push(_:)`` takes the energy of frames as they are
/// computed and returns the segments that have closed; ``finish()`` closes the last.
public struct VoiceActivityDetector: Sendable {
    public let configuration: VoiceActivityConfiguration
    public let features: FeatureConfiguration
    /// Frame-level decision before bridging pauses and dropping blips: `true` where the
    /// energy is above the hysteresis thresholds.
    public private(set) var rawSpeech: [Bool] = []
    /// The noise floor estimate per frame (dB).
    public private(set) var floor: [Float] = []

    /// When set, speech that goes on longer than this (seconds) is cut at its quietest frame in
    /// the second half of that length (usually between two words), so that a live transcript
    /// need not wait for a talker to pause. Nil: segments end only at pauses.
    public var maxSegment: Double?

    /// Whether each frame so far was clearly voiced (`voicedFrame`); true where no voicing came.
    private var voiced: [Bool] = []
    private var currentFloor: Float?
    /// The smoothed energy of each frame of the open segment (kept only with `maxSegment`).
    private var openEnergy: [Float] = []
    private var inSpeech = false
    private var openStart: Int?
    private var lastSpeechFrame = -1
    private var frame = 0
    private var previous: Float?
    /// Recent smoothed energies and floors, to extend a segment's start backwards.
    private var recent: [(energy: Float, floor: Float)] = []
    /// The energies of the recording's clearly voiced frames and of all its frames, for its
    /// level; fixed when the whole recording was known beforehand, or when no level bounds the
    /// floor (`floorBelowLevel` infinite).
    private var level = EnergyQuantile()
    private var levelOfAll = EnergyQuantile()
    private var levelIsFixed: Bool

    public init(configuration: VoiceActivityConfiguration = .init(), features: FeatureConfiguration = .init()) {
        self.configuration = configuration
        self.features = features
        levelIsFixed = !configuration.floorBelowLevel.isFinite
    }

    /// Processes the energy (dB) of the next frames, with their voicing (0...1, when the front
    /// computes pitch); returns segments that closed.
    public mutating func push(_ energy: some Collection<Float>, voicing: [Float] = []) -> [SpeechSegment] {
        let c = configuration
        let hop = Float(features.hopDuration)
        let minSilenceFrames = Int((c.minSilence / features.hopDuration).rounded())
        let lookBack = max(2, Int((c.maxOnsetExtension / features.hopDuration).rounded()))
        var closed: [SpeechSegment] = []
        rawSpeech.reserveCapacity(rawSpeech.count + energy.count)
        voiced.reserveCapacity(voiced.count + energy.count)
        var lowest = lowestFloor()
        for (i, e) in energy.enumerated() {
            voiced.append(i < voicing.count ? voicing[i] >= c.voicedFrame : true)
            if !levelIsFixed {
                hear(e, voiced: Self.countsAsVoiced(i, voicing, c))
                lowest = lowestFloor()
            }
            // A light smoothing over two frames keeps single-frame dips from flipping the state.
            let smoothed = previous.map { 0.5 * ($0 + e) } ?? e
            previous = e
            var f = max(lowest, currentFloor ?? smoothed)
            f = smoothed < f ? max(lowest, smoothed) : f + c.floorRise * hop
            currentFloor = f
            floor.append(f)
            let wasSpeech = inSpeech
            let voiced = c.voicedOnset > 0 && i < voicing.count && voicing[i] >= c.voicedOnset
            let onset = voiced ? min(c.onsetAboveFloor, c.voicedOnsetAboveFloor) : c.onsetAboveFloor
            inSpeech = inSpeech ? smoothed > f + min(onset, c.offsetAboveFloor) : smoothed > f + onset
            rawSpeech.append(inSpeech)
            recent.append((smoothed, f))
            if recent.count > lookBack { recent.removeFirst(recent.count - lookBack) }
            if inSpeech && !wasSpeech {
                // The hysteresis, backwards: speech began before the energy crossed the onset
                // threshold, on the rising edge where it first rose above the offset threshold.
                // Going back, follow only an energy that keeps falling (by 0.5 dB a frame or
                // more), so a steady noise that the floor has not caught up with yet does not
                // pull the start into itself.
                var back = 0
                var later = smoothed
                while back + 1 < recent.count, frame - back - 1 > lastSpeechFrame {
                    let earlier = recent[recent.count - 2 - back]
                    guard earlier.energy > earlier.floor + c.offsetAboveFloor, earlier.energy <= later - 0.5 else {
                        break
                    }
                    later = earlier.energy
                    back += 1
                    rawSpeech[frame - back] = true
                }
                if openStart == nil { openStart = frame - back }
            }
            if inSpeech {
                if openStart == nil { openStart = frame }
                lastSpeechFrame = frame
            } else if let start = openStart, frame - lastSpeechFrame >= minSilenceFrames {
                if let segment = makeSegment(start, lastSpeechFrame + 1) { closed.append(segment) }
                openStart = nil
            }
            if let longest = maxSegment { closed += cutIfLong(smoothed, longest: longest) }
            frame += 1
        }
        return closed
    }

    /// With `maxSegment`: records this frame's energy while a segment is open, and closes the
    /// part before its quietest frame once it has lasted `longest`; the rest stays open.
    private mutating func cutIfLong(_ energy: Float, longest: Double) -> [SpeechSegment] {
        guard let start = openStart else {
            openEnergy.removeAll(keepingCapacity: true)
            return []
        }
        // Frames before the energy was recorded (a start moved back) count as loud.
        while openEnergy.count < frame - start { openEnergy.append(.greatestFiniteMagnitude) }
        openEnergy.append(energy)
        let limit = max(2, Int((longest / features.hopDuration).rounded()))
        guard frame - start + 1 >= limit else { return [] }
        let from = limit / 2
        var cut = from
        for index in from..<openEnergy.count where openEnergy[index] < openEnergy[cut] { cut = index }
        let segment = makeSegment(start, start + cut)
        openStart = start + cut
        openEnergy.removeFirst(cut)
        return segment.map { [$0] } ?? []
    }

    /// Seconds before which no segment is still to come: the start of the segment now open,
    /// or, in silence, the current time less the furthest a start can be moved back.
    public var settledUntil: Double {
        let hop = features.hopDuration
        let frameStart = openStart ?? max(0, frame - Int((configuration.maxOnsetExtension / hop).rounded()) - 2)
        return max(0, features.time(ofFrame: frameStart) - hop / 2 - configuration.padding)
    }

    /// Where the speech going on now began (seconds), or nil in silence.
    public var openSpeechStart: Double? {
        openStart.map { max(0, features.time(ofFrame: $0) - features.hopDuration / 2 - configuration.padding) }
    }

    /// Closes the segment still open at the end of the audio.
    public mutating func finish() -> [SpeechSegment] {
        defer { openStart = nil }
        guard let start = openStart, let segment = makeSegment(start, lastSpeechFrame + 1) else { return [] }
        return [segment]
    }

    /// Runs the detector over a whole recording's energy.
    public static func detect(
        energy: [Float], voicing: [Float] = [], configuration: VoiceActivityConfiguration = .init(),
        features: FeatureConfiguration = .init()
    ) -> (segments: [SpeechSegment], detector: VoiceActivityDetector) {
        var detector = VoiceActivityDetector(configuration: configuration, features: features)
        if !detector.levelIsFixed {
            for (i, e) in energy.enumerated() { detector.hear(e, voiced: countsAsVoiced(i, voicing, configuration)) }
            detector.levelIsFixed = true
        }
        let segments = detector.push(energy, voicing: voicing) + detector.finish()
        return (segments, detector)
    }

    /// Whether frame `i` counts among the voiced frames that set the level: clearly voiced, or
    /// any frame when the front gave no voicing.
    private static func countsAsVoiced(_ i: Int, _ voicing: [Float], _ c: VoiceActivityConfiguration) -> Bool {
        voicing.isEmpty || (i < voicing.count && voicing[i] >= c.voicedFrame)
    }

    /// Counts a frame's energy towards the recording's level.
    private mutating func hear(_ energy: Float, voiced: Bool) {
        levelOfAll.add(energy)
        if voiced { level.add(energy) }
    }

    /// The lowest the floor may go: the recording's level less `floorBelowLevel` (with
    /// `absoluteFloor`: at most that, and that alone until the level is known), and at least
    /// `minimumFloor`.
    private mutating func lowestFloor() -> Float {
        let c = configuration
        if let absolute = c.absoluteFloor, Double(level.count) * features.hopDuration < c.knownLevelAfter {
            return max(c.minimumFloor, absolute)
        }
        let ofVoiced = level.quantile(c.levelQuantile)
        let ofAll = levelOfAll.quantile(c.levelQuantile)
        let relative = min(ofVoiced, ofAll + c.levelAboveAll) - c.floorBelowLevel
        return max(c.minimumFloor, min(relative, c.absoluteFloor ?? relative))
    }

    private func makeSegment(_ start: Int, _ end: Int) -> SpeechSegment? {
        let hop = features.hopDuration
        guard Double(end - start) * hop >= configuration.minSpeech else { return nil }
        if configuration.minVoiced > 0 {
            let voicedFrames = voiced[max(0, start)..<min(end, voiced.count)].lazy.filter { $0 }.count
            guard Double(voicedFrames) * hop >= configuration.minVoiced else { return nil }
        }
        let startTime = max(0, features.time(ofFrame: start) - hop / 2 - configuration.padding)
        let endTime = features.time(ofFrame: end - 1) + hop / 2 + configuration.padding
        return SpeechSegment(startFrame: start, endFrame: end, start: startTime, end: endTime)
    }
}

/// A running quantile of energies (dB), from a histogram of 0.25-dB bins over -160...+40 dB:
/// constant memory, and constant time per value for a quantile that moves little between values.
struct EnergyQuantile: Sendable {
    private static let low: Float = -160
    private static let width: Float = 0.25
    private static let bins = 800
    private var counts = [Int](repeating: 0, count: bins)
    private(set) var count = 0
    /// The bin of the last answer, and how many values lie in the bins below it.
    private var bin = 0
    private var below = 0

    mutating func add(_ value: Float) {
        guard value.isFinite else { return }
        let b = min(Self.bins - 1, max(0, Int(((value - Self.low) / Self.width).rounded(.down))))
        counts[b] += 1
        count += 1
        if b < bin { below += 1 }
    }

    /// The centre of the lowest bin at or below which lie at least `q` of the values; -160 dB
    /// when there are none.
    mutating func quantile(_ q: Float) -> Float {
        guard count > 0 else { return Self.low }
        let wanted = max(1, Int((Float(count) * q).rounded(.up)))
        while bin > 0 && below >= wanted {
            bin -= 1
            below -= counts[bin]
        }
        while below + counts[bin] < wanted && bin < Self.bins - 1 {
            below += counts[bin]
            bin += 1
        }
        return Self.low + (Float(bin) + 0.5) * Self.width
    }
}
