/// Settings of the speaker diarizer. The defaults were tuned on synthesized
/// meetings and are explained in Docs/audio-front.md.
public struct DiarizationConfiguration: Sendable, Hashable, Codable {
    /// The exact number of speakers, if known.
    public var speakers: Int?
    /// Bounds for the automatic speaker count.
    public var minSpeakers = 1
    public var maxSpeakers = 8
    public var voiceActivity = VoiceActivityConfiguration()
    /// Speakers are labelled within islands of speech split at pauses this long (seconds).
    public var islandPause: Double = 0.3
    /// A pause at least this long inside speech starts a new clustering unit (seconds).
    public var unitPause: Double = 0.2
    /// Units longer than this are cut into equal pieces before clustering (seconds).
    public var maxUnit: Double = 3.0
    /// Units shorter than this are labelled afterwards instead of clustered (seconds).
    public var minClusteredUnit: Double = 0.4
    /// Two groups of speech are two speakers when their mean embeddings lie at least this far
    /// apart, in units of one voice's own spread (the embedding space is whitened by it).
    public var minSeparation: Double = 2.25
    /// And the separation must be this many standard errors: the distance times
    /// sqrt(n1 n2 / (n1 + n2)) for halves of n1 and n2 units (a Hotelling-style statistic), so a
    /// gap between a handful of units counts for less than the same gap between many.
    public var minSignificance: Double = 4.0
    /// The speaker count is decided in the directions of the whitened space in which the units
    /// vary at least this many times as much as one voice does (0: in all of them).
    public var speakerDirectionVariance: Double = 2.0
    /// At most this many units are clustered (an even sample over time); the matrix of their
    /// distances is what bounds the diarizer's memory on long meetings.
    public var maxClusteredUnits = 1_500
    /// A cluster with less speech than this (seconds) is an outlier, not a speaker; it is folded
    /// into the nearest speaker. Capped at half of the speech shared between the fewest speakers
    /// allowed (at least two), so a short recording can still hold its speakers; an even share
    /// among `maxSpeakers` was too small a cap for a 40-second meeting and let 2-second
    /// fragments of one voice count as speakers.
    public var minSpeakerTime: Double = 4
    /// Re-label speech at frame level with a Viterbi pass over sliding windows.
    public var resegment = true
    /// The window of that pass (seconds) and its step.
    public var resegmentWindow: Double = 0.6
    public var resegmentStep: Double = 0.1
    /// Cost of a speaker change in that pass, relative to the median window cost.
    public var switchPenalty: Double = 10
    /// Same-speaker turns separated by less than this are joined (seconds): a talker who
    /// pauses for breath or a word, with nobody else speaking meanwhile, still holds the floor,
    /// and references of real conversations (word-aligned AMI turns: no pause under 0.8 s
    /// between two turns of one person) count the pause as theirs. 0.6 s left such pauses
    /// missed on real speech (real-train 50.3% -> 48.1% DER with 1.0 s); on the generator's
    /// meetings, whose truth has every silence exact, it costs a few tenths of a point.
    public var mergeGap: Double = 1.0

    /// `maxSpeakers` defaults to 8, or to `speakers` when more are given.
    public init(speakers: Int? = nil, minSpeakers: Int = 1, maxSpeakers: Int? = nil) {
        self.speakers = speakers
        self.minSpeakers = minSpeakers
        self.maxSpeakers = maxSpeakers ?? max(8, speakers ?? 0)
    }

    func validate() throws(AudioError) {
        if let speakers, speakers < 1 { throw .invalidArgument("--speakers must be at least 1") }
        if minSpeakers < 1 { throw .invalidArgument("--min-speakers must be at least 1") }
        if maxSpeakers < minSpeakers {
            throw .invalidArgument("--max-speakers (\(maxSpeakers)) is below --min-speakers (\(minSpeakers))")
        }
        if let speakers, speakers < minSpeakers || speakers > maxSpeakers {
            throw .invalidArgument("--speakers \(speakers) is outside --min-speakers/--max-speakers")
        }
    }
}

/// Who spoke when.
public struct Diarization: Sendable, Codable {
    public var turns: [SpeakerTurn]
    /// Speaker labels in order of first appearance.
    public var speakers: [String]
    /// What the voice activity detector found.
    public var speech: [SpeechSegment]
    public var duration: Double
    /// One voice embedding per speaker label, where the diarizer computed one: what voice
    /// profiles are made of and matched with.
    public var voices: [String: [Float]]
    /// Which embedding `voices` holds (``SpeakerDiarizer/voiceKind`` for the classic one):
    /// embeddings of different kinds are never compared.
    public var voiceKind: String?

    public init(
        turns: [SpeakerTurn], speakers: [String], speech: [SpeechSegment], duration: Double,
        voices: [String: [Float]] = [:], voiceKind: String? = nil
    ) {
        self.turns = turns
        self.speakers = speakers
        self.speech = speech
        self.duration = duration
        self.voices = voices
        self.voiceKind = voiceKind
    }
}
