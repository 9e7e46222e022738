public import Foundation
import ParleyEvents

/// Names the speakers of a meeting from voice profiles: each speaker's voice embedding is
/// compared with every profile of the same kind, and speakers and profiles are paired best
/// score first, so that one profile (one name) goes to at most one speaker.
///
/// A wrong name is worse than none: a speaker is named only when the score passes the kind's
/// naming threshold and beats every other profile by a margin; a weaker match that still passes
/// the suggestion threshold is offered as a suggestion. The score (0-1 for a good match) is
/// reported as the match's confidence.
public struct VoiceMatcher: Sendable {
    /// How a kind's embeddings are compared, and the scores that name or suggest.
    public struct Calibration: Sendable, Hashable {
        public enum Metric: Sendable, Hashable {
            /// Cosine similarity (embeddings made for speaker verification, like CAM++).
            case cosine
            /// exp(-d²/2), d the root-mean-square difference after dividing each dimension by
            /// `scale` (how much one person's value varies between recordings).
            case distance(scale: [Float])
        }
        public var metric: Metric
        /// A score at least this names the speaker.
        public var name: Double
        /// A score at least this (and below `name`, or without the margin) is a suggestion.
        public var suggest: Double
        /// The best profile must beat the second best by this much to name a speaker.
        public var margin: Double
    }

    /// The calibrations of the embeddings Parley's diarizers make; Docs/voices.md says how they
    /// were measured. A kind not listed is compared by cosine with the neural thresholds.
    public static let calibrations: [String: Calibration] = [
        // CAM++ on real speech (AMI, 30-second excerpts): the same person in two recordings
        // scored 0.15-0.77, two people at most 0.49.
        "campplus-cn-en-common-192": Calibration(metric: .cosine, name: 0.55, suggest: 0.4, margin: 0.1),
        // The classic voice (median pitch, mean MFCC): a person's pitch moves about 2 semitones
        // between recordings and each MFCC about 3. It tells synthetic voices apart, but on real
        // speech two people are often as close as one person twice, so it names only very
        // close voices.
        "classic-pitch-mfcc-20": Calibration(
            metric: .distance(scale: [2] + [Float](repeating: 3, count: 19)), name: 0.65, suggest: 0.5, margin: 0.1),
    ]

    public let kind: String
    public let calibration: Calibration

    public init(kind: String) {
        self.kind = kind
        calibration = Self.calibrations[kind] ?? Self.calibrations["campplus-cn-en-common-192"]!
    }

    /// A voice as profiles keep it (they keep the mean of these): of unit length for the
    /// cosine, divided by the scale for the distance. Empty when the vector cannot be one.
    public func normalized(_ vector: [Float]) -> [Float] {
        guard !vector.isEmpty, vector.allSatisfy(\.isFinite) else { return [] }
        switch calibration.metric {
        case .cosine:
            var norm: Float = 0
            for x in vector { norm += x * x }
            norm = norm.squareRoot()
            guard norm > 0 else { return [] }
            return vector.map { $0 / norm }
        case .distance(let scale):
            guard scale.count == vector.count else { return [] }
            return zip(vector, scale).map { $0 / $1 }
        }
    }

    /// The score of a normalized voice against a profile's mean.
    public func score(_ voice: [Float], _ profile: [Float]) -> Double {
        guard voice.count == profile.count, !voice.isEmpty else { return 0 }
        switch calibration.metric {
        case .cosine:
            var dot: Float = 0
            var norm: Float = 0
            for i in voice.indices {
                dot += voice[i] * profile[i]
                norm += profile[i] * profile[i]
            }
            guard norm > 0 else { return 0 }
            return Double(dot / norm.squareRoot())
        case .distance:
            var sum: Float = 0
            for i in voice.indices { sum += (voice[i] - profile[i]) * (voice[i] - profile[i]) }
            return exp(-Double(sum) / Double(voice.count) / 2)
        }
    }

    /// A profile: its id, its name, and the mean of its normalized voices.
    public struct Profile: Sendable, Hashable {
        public var id: String
        public var name: String
        public var vector: [Float]

        public init(id: String, name: String, vector: [Float]) {
            self.id = id
            self.name = name
            self.vector = vector
        }
    }

    /// A speaker of the meeting: the label, its embedding, and the profiles people said it is not.
    public struct Voice: Sendable, Hashable {
        public var speaker: String
        public var vector: [Float]
        public var rejected: Set<String>

        public init(speaker: String, vector: [Float], rejected: Set<String> = []) {
            self.speaker = speaker
            self.vector = vector
            self.rejected = rejected
        }
    }

    public struct Match: Sendable, Hashable {
        public var speaker: String
        public var profile: String
        public var name: String
        public var confidence: Double
        /// Named outright; otherwise a suggestion.
        public var confident: Bool
    }

    /// The matches for `voices` among `profiles` (none twice), leaving out the names in `taken`
    /// (given to other speakers of the meeting by people).
    public func match(_ voices: [Voice], profiles: [Profile], taken: Set<String> = []) -> [Match] {
        let prepared = voices.map { normalized($0.vector) }
        var pairs: [(voice: Int, profile: Int, score: Double)] = []
        var best: [Int: (first: Double, second: Double)] = [:]
        for (v, vector) in prepared.enumerated() where !vector.isEmpty {
            var first = 0.0
            var second = 0.0
            for (p, profile) in profiles.enumerated() {
                let s = score(vector, profile.vector)
                if s > first {
                    second = first
                    first = s
                } else if s > second {
                    second = s
                }
                if s >= calibration.suggest { pairs.append((v, p, s)) }
            }
            best[v] = (first, second)
        }
        pairs.sort { $0.score > $1.score }
        var matched: [Match] = []
        var usedVoices: Set<Int> = []
        var usedProfiles: Set<Int> = []
        let takenKeys = Set(taken.map(SpeakerInfo.nameKey))
        for (v, p, s) in pairs where !usedVoices.contains(v) && !usedProfiles.contains(p) {
            let profile = profiles[p]
            guard !voices[v].rejected.contains(profile.id), !takenKeys.contains(SpeakerInfo.nameKey(profile.name))
            else {
                continue
            }
            usedVoices.insert(v)
            usedProfiles.insert(p)
            // The margin is over the voice's best other profile: a voice as close to two people is
            // not named, only offered.
            let runnerUp = best[v].map { $0.first == s ? $0.second : $0.first } ?? 0
            let confident = s >= calibration.name && s - runnerUp >= calibration.margin
            matched.append(
                Match(
                    speaker: voices[v].speaker, profile: profile.id, name: profile.name,
                    confidence: (s * 1000).rounded() / 1000, confident: confident))
        }
        return matched.sorted { $0.speaker < $1.speaker }
    }
}
