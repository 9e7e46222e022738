import ArgumentParser
import Foundation
import Logging
import ParleyJobs
import ParleyPipeline
import ParleyStore

extension Bench {
    /// Voice recognition as an owner lives it, on diarized meetings given as JSON (made by
    /// benchmarks/voices.py): each meeting's speakers are matched with the profiles so far, then
    /// every speaker is named (its voice learnt into its person's profile), as a rename does.
    /// Also the cost of naming a meeting's speakers against many profiles, read from SQLite.
    struct Voices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay voice recognition over diarized meetings (JSON) and time matching; print JSON.")

        @Argument(
            help: "JSON: {kind, meetings: [{name, voices: [{speaker, person, vector, speech}], learn}]}")
        var file: String

        @Option(help: "Time naming 4 speakers against this many profiles (0: skip).")
        var profiles = 1000

        struct Input: Decodable {
            struct Voice: Decodable {
                var speaker: String
                /// Who it really is (the reference speaker the diarized one mostly is).
                var person: String
                var vector: [Float]
                var speech: Double
            }
            struct Meeting: Decodable {
                var name: String
                var voices: [Voice]
                /// Whether its speakers are then named (enrolled); false: only recognized.
                var learn: Bool?
            }
            var kind: String
            var meetings: [Meeting]
        }

        func run() async throws {
            let input = try JSONDecoder().decode(Input.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
            let matcher = VoiceMatcher(kind: input.kind)
            var prints: [String: (vector: [Float], samples: Int)] = [:]
            var outcomes: [[String: Any]] = []
            for meeting in input.meetings {
                let profiles = prints.map { VoiceMatcher.Profile(id: $0.key, name: $0.key, vector: $0.value.vector) }
                let voices = meeting.voices.filter { $0.speech >= OwnerVoices.minSpeech }.map {
                    VoiceMatcher.Voice(speaker: $0.speaker, vector: $0.vector)
                }
                let matches = matcher.match(voices, profiles: profiles)
                for voice in meeting.voices {
                    let match = matches.first { $0.speaker == voice.speaker }
                    outcomes.append([
                        "meeting": meeting.name, "speaker": voice.speaker, "person": voice.person,
                        "known": prints[voice.person] != nil, "speech": voice.speech,
                        "named": match.flatMap { $0.confident ? $0.name : nil } ?? NSNull(),
                        "suggested": match.flatMap { $0.confident ? nil : $0.name } ?? NSNull(),
                        "confidence": match?.confidence ?? NSNull(),
                    ])
                }
                guard meeting.learn ?? true else { continue }
                for voice in meeting.voices {
                    let v = matcher.normalized(voice.vector)
                    guard !v.isEmpty else { continue }
                    let old = prints[voice.person]
                    let n = old?.samples ?? 0
                    let mean = old.map { zip($0.vector, v).map { ($0 * Float(n) + $1) / Float(n + 1) } } ?? v
                    prints[voice.person] = (mean, n + 1)
                }
            }
            var report: [String: Any] = ["kind": input.kind, "outcomes": outcomes]
            if profiles > 0, let dims = input.meetings.first?.voices.first?.vector.count {
                report["matching"] = try await timeMatching(kind: input.kind, dims: dims, count: profiles)
            }
            let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: json, as: UTF8.self))
        }

        /// Profiles of random voices in a fresh SQLite store; the time to read one owner's prints
        /// and name a meeting's four speakers, as OwnerVoices does after each meeting (median and
        /// worst of 50).
        func timeMatching(kind: String, dims: Int, count: Int) async throws -> [String: Any] {
            let folder = NSTemporaryDirectory() + "parley-bench-voices-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let store = try await SQLStore.sqlite(path: folder + "/parley.sqlite", logger: Logger(label: "bench"))
            try await store.createUser(UserRecord(id: "u_1", username: "owner", passwordHash: "-", createdAt: Date()))
            let matcher = VoiceMatcher(kind: kind)
            var generator = SystemRandomNumberGenerator()
            func random() -> [Float] { (0..<dims).map { _ in Float.random(in: -1...1, using: &generator) } }
            for i in 0..<count {
                _ = try await store.learnVoice(
                    ownerID: "u_1", name: "Person \(i)", kind: kind, vector: matcher.normalized(random()),
                    from: VoiceSource())
            }
            var times: [Double] = []
            for _ in 0..<50 {
                let voices = (1...4).map { VoiceMatcher.Voice(speaker: "S\($0)", vector: random()) }
                let start = ContinuousClock.now
                let prints = try await store.voicePrints(ownerID: "u_1", kind: kind)
                _ = matcher.match(
                    voices, profiles: prints.map { .init(id: $0.profileID, name: $0.name, vector: $0.vector) })
                times.append(Bench.seconds(ContinuousClock.now - start) * 1000)
            }
            try await store.close()
            times.sort()
            return ["profiles": count, "speakers": 4, "median_ms": times[times.count / 2], "max_ms": times.last ?? 0]
        }
    }
}
