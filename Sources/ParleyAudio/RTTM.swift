/// NIST Rich Transcription Time Marked files, the format diarization is scored in.
public enum RTTM {
    /// One `SPEAKER` line per turn: `SPEAKER file 1 start duration <NA> <NA> speaker <NA> <NA>`.
    public static func format(_ turns: [SpeakerTurn], recording: String) -> String {
        let name = recording.isEmpty ? "recording" : recording.replacing(" ", with: "_")
        return turns.map { turn in
            "SPEAKER \(name) 1 \(fixed3(turn.start)) \(fixed3(turn.duration)) <NA> <NA> \(turn.speaker) <NA> <NA>\n"
        }.joined()
    }

    /// Reads the `SPEAKER` lines of an RTTM file; other line types are skipped.
    public static func parse(_ text: String) throws(AudioError) -> [SpeakerTurn] {
        var turns: [SpeakerTurn] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.first == "SPEAKER" else { continue }
            guard fields.count >= 8, let start = Double(fields[3]), let duration = Double(fields[4]), duration >= 0
            else { throw AudioError.invalidArgument("RTTM line \(number + 1) is malformed: \(line)") }
            turns.append(SpeakerTurn(speaker: String(fields[7]), start: start, end: start + duration))
        }
        return turns
    }

    /// Three decimals without Foundation's formatters.
    static func fixed3(_ value: Double) -> String {
        let millis = Int((value * 1000).rounded())
        let sign = millis < 0 ? "-" : ""
        let m = abs(millis)
        let fraction = String(m % 1000)
        return "\(sign)\(m / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
