import Foundation
import ParleyAudio

/// One turn of a generated meeting, with its exact place in the audio.
public struct ReferenceTurn: Codable, Sendable, Hashable {
    public var speaker: String
    public var start: Double
    public var end: Double
    public var text: String
}

/// The ground truth written beside a generated meeting (reference.json).
public struct MeetingReference: Codable, Sendable {
    public var audio: String
    public var sampleRate: Int
    public var duration: Double
    public var speakers: [String]
    public var turns: [ReferenceTurn]
    public var actionItems: [MeetingScript.ActionItem]

    enum CodingKeys: String, CodingKey {
        case audio, duration, speakers, turns
        case sampleRate = "sample_rate"
        case actionItems = "action_items"
    }
}

/// Synthesizes a multi-speaker meeting with espeak-ng and writes the audio
/// with its exact ground truth: reference.rttm, reference.json, reference.txt.
///
/// Each utterance is spoken once by espeak-ng, decoded and resampled by the
/// project's own front, trimmed to where it is audible, and placed after a
/// random pause (or, with `overlap`, before the previous turn ends). Optional
/// white noise is added at a given SNR over the whole mix.
public struct MeetingGenerator: Sendable {
    public var script: MeetingScript
    public var seed: UInt64 = 1
    public var sampleRate = 16_000
    /// Noise at this signal-to-noise ratio in dB, or none.
    public var snr: Double?
    /// The chance that a turn starts 0.3-0.8 s before the previous one ends.
    public var overlap = 0.0
    /// "wav", "flac", "ogg" or "aiff".
    public var format = "wav"
    /// Speak the script this many times (longer meetings).
    public var repeats = 1
    /// The espeak-ng executable.
    public var espeak = "espeak-ng"

    public init(script: MeetingScript) { self.script = script }

    public struct Output: Sendable {
        public var audioPath: String
        public var reference: MeetingReference
    }

    public func write(to directory: String) throws -> Output {
        guard (1...1000).contains(repeats) else { throw AudioError.invalidArgument("repeats must be 1...1000") }
        guard (0.0...1.0).contains(overlap) else { throw AudioError.invalidArgument("overlap must be 0...1") }
        guard ["wav", "flac", "ogg", "aiff"].contains(format) else {
            throw AudioError.invalidArgument("format must be wav, flac, ogg or aiff")
        }
        for turn in script.turns {
            guard turn.count == 2, script.speakers[turn[0]] != nil else {
                throw AudioError.invalidArgument("script turn \(turn) names no known speaker")
            }
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let scratch = fm.temporaryDirectory.appendingPathComponent("parley-synth-\(UUID().uuidString)").path
        try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: scratch) }

        var random = SplitMix64(seed: seed)
        let rate = Double(sampleRate)
        var mix: [Float] = []
        var turns: [ReferenceTurn] = []
        var cursor = Int(0.5 * rate)
        var spoken: [String: [Float]] = [:]
        // A long meeting is not one recording looped: from the second repetition on, each turn's
        // words come in a new order and are spoken a little higher or lower, faster or slower.
        // (Identical repeats make every sentence a tight cluster of its own, which no real
        // meeting has.) A separate generator keeps the pauses as they are without repeats.
        var delivery = SplitMix64(seed: seed ^ 0x5EED_DE11_7E5F_0001)
        for repetition in 0..<repeats {
            for turn in script.turns {
                let who = turn[0]
                var text = turn[1]
                var voice = script.speakers[who]!
                if repetition > 0 {
                    var words = text.split(separator: " ").map {
                        $0.filter { $0.isLetter || $0.isNumber || $0 == "'" }.lowercased()
                    }
                    words.shuffle(using: &delivery)
                    text = words.joined(separator: " ") + "."
                    voice.pitch = (voice.pitch ?? 50) + [-2, 0, 2][Int(delivery.next() % 3)]
                    voice.speed = (voice.speed ?? 160) + [-8, 0, 8][Int(delivery.next() % 3)]
                }
                let key = "\(who)\u{1F}\(text)\u{1F}\(voice.pitch ?? 50)\u{1F}\(voice.speed ?? 160)"
                let utterance: [Float]
                if let cached = spoken[key] {
                    utterance = cached
                } else {
                    utterance = try speak(text, voice: voice, scratch: scratch)
                    spoken[key] = utterance
                }
                let start: Int
                if !turns.isEmpty && random.nextUnit() < overlap {
                    start = max(0, cursor - Int(random.nextUnit(in: 0.3...0.8) * rate))
                } else {
                    start = cursor + Int(random.nextUnit(in: 0.25...0.9) * rate)
                }
                let end = start + utterance.count
                if mix.count < end { mix += [Float](repeating: 0, count: end - mix.count) }
                for (i, v) in utterance.enumerated() { mix[start + i] += v }
                turns.append(
                    ReferenceTurn(
                        speaker: who, start: Self.round3(Double(start) / rate), end: Self.round3(Double(end) / rate),
                        text: text))
                cursor = max(cursor, end)
            }
        }
        mix += [Float](repeating: 0, count: Int(0.5 * rate))

        if let snr {
            let power = mix.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, mix.count))
            let sigma = (power / pow(10, snr / 10)).squareRoot()
            for i in mix.indices { mix[i] += Float(random.nextGaussian() * sigma) }
        }
        let peak = mix.reduce(Float(1e-9)) { max($0, abs($1)) }
        let gain = min(1, 0.95 / peak)
        for i in mix.indices { mix[i] *= gain }

        let audioPath = (directory as NSString).appendingPathComponent("meeting.\(format)")
        try AudioFileWriter.write(mix, sampleRate: sampleRate, to: audioPath)

        let reference = MeetingReference(
            audio: "meeting.\(format)", sampleRate: sampleRate, duration: Self.round3(Double(mix.count) / rate),
            speakers: script.speakers.keys.sorted(), turns: turns, actionItems: script.actionItems)
        try writeReference(reference, to: directory)
        return Output(audioPath: audioPath, reference: reference)
    }

    private func writeReference(_ reference: MeetingReference, to directory: String) throws {
        func path(_ name: String) -> URL { URL(fileURLWithPath: directory).appendingPathComponent(name) }
        let rttm = reference.turns.map {
            SpeakerTurn(speaker: $0.speaker, start: $0.start, end: $0.end)
        }
        try RTTM.format(rttm, recording: "meeting").write(to: path("reference.rttm"), atomically: true, encoding: .utf8)
        try (reference.turns.map(\.text).joined(separator: "\n") + "\n")
            .write(to: path("reference.txt"), atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(reference).write(to: path("reference.json"))
    }

    /// One utterance at the meeting's rate, trimmed to where it is audible.
    private func speak(_ text: String, voice: MeetingScript.Voice, scratch: String) throws -> [Float] {
        let wav = (scratch as NSString).appendingPathComponent("utterance.wav")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            espeak, "-v", voice.voice, "-p", String(voice.pitch ?? 50), "-s", String(voice.speed ?? 160), "-w", wav,
            text,
        ]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw AudioError(.io, "cannot run \(espeak): \(error.localizedDescription)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let why = String(decoding: message, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            throw AudioError(.io, "\(espeak) failed (exit \(process.terminationStatus)): \(why)")
        }
        let samples = try AudioDecoder(path: wav, targetRate: sampleRate, quality: .best).readAll()
        return Self.trim(samples, rate: sampleRate)
    }

    /// Cuts leading and trailing 10 ms windows whose RMS is below 0.01.
    static func trim(_ x: [Float], rate: Int, threshold: Float = 0.01) -> [Float] {
        let window = max(1, rate / 100)
        func loud(_ at: Int) -> Bool {
            let slice = x[at..<min(x.count, at + window)]
            guard !slice.isEmpty else { return false }
            return (slice.reduce(0) { $0 + $1 * $1 } / Float(slice.count)).squareRoot() > threshold
        }
        var start = 0
        while start < x.count && !loud(start) { start += window }
        var end = x.count
        while end > start && !loud(max(start, end - window)) { end -= window }
        return Array(x[start..<end])
    }

    static func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
}

/// A small seeded generator, so a meeting is the same for the same seed everywhere.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func nextUnit(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + nextUnit() * (range.upperBound - range.lowerBound)
    }

    mutating func nextGaussian() -> Double {
        let u = max(nextUnit(), 1e-300)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * nextUnit())
    }
}
