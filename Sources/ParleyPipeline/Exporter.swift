import Foundation
import ParleyAudio
public import ParleyEvents
import ParleyPluginAPI

/// The formats a finished meeting can be written in.
public enum ExportFormat: String, Sendable, CaseIterable, Codable {
    case json, srt, vtt, txt, md, rttm

    public var fileExtension: String { rawValue }

    /// Parses "json,srt,md".
    public static func list(_ text: String) throws -> [ExportFormat] {
        try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter {
            !$0.isEmpty
        }.map { name in
            guard let format = ExportFormat(rawValue: name == "markdown" ? "md" : name) else {
                throw PipelineError(
                    .export,
                    "unknown format '\(name)' (known: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            return format
        }
    }
}

/// Writes a meeting's state in the export formats.
public enum Exporter {
    public static func render(_ state: MeetingState, as format: ExportFormat) throws -> String {
        switch format {
        case .json: try json(state)
        case .srt: subtitles(state, vtt: false)
        case .vtt: subtitles(state, vtt: true)
        case .txt: text(state)
        case .md: markdown(state)
        case .rttm: RTTM.format(state.turns.map(SpeakerTurn.init), recording: state.meetingID)
        }
    }

    public static func json(_ state: MeetingState) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(MeetingEvent.formatTimestamp(date))
        }
        return String(decoding: try encoder.encode(state), as: UTF8.self) + "\n"
    }

    /// `01:02:03,456` (SRT) or `01:02:03.456` (VTT).
    static func clock(_ seconds: Double, separator: Character) -> String {
        let ms = Int((max(0, seconds) * 1000).rounded())
        return String(
            format: "%02d:%02d:%02d%@%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60,
            String(separator), ms % 1000)
    }

    /// "1 speaker", "3 speakers": a count and its noun.
    public static func counted(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }

    /// `mm:ss`, or `h:mm:ss` past an hour.
    public static func shortClock(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%02d:%02d", s / 60, s % 60)
    }

    static func subtitles(_ state: MeetingState, vtt: Bool) -> String {
        var out = vtt ? "WEBVTT\n\n" : ""
        for (index, segment) in state.segments.enumerated() {
            let separator: Character = vtt ? "." : ","
            if !vtt { out += "\(index + 1)\n" }
            out += "\(clock(segment.start, separator: separator)) --> \(clock(segment.end, separator: separator))\n"
            let name = state.name(of: segment.speaker)
            out += vtt ? "<v \(name)>\(segment.text)\n\n" : "\(name): \(segment.text)\n\n"
        }
        return out
    }

    static func text(_ state: MeetingState) -> String {
        state.segments.map { "[\(shortClock($0.start))] \(state.name(of: $0.speaker)): \($0.text)" }
            .joined(separator: "\n") + "\n"
    }

    /// Minutes: title, date, duration, participants, summary, decisions, action items, transcript.
    static func markdown(_ state: MeetingState) -> String {
        func cell(_ text: String?) -> String {
            (text ?? "").replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var out = "# \(state.title)\n\n"
        let date = state.createdAt.formatted(.iso8601.year().month().day())
        out += "- **Date:** \(date)\n"
        out += "- **Duration:** \(shortClock(state.duration ?? state.segments.last?.end ?? 0))\n"
        let participants = state.speakers.map(\.name)
        out +=
            "- **Participants:** \(participants.isEmpty ? "none detected" : participants.joined(separator: ", "))\n\n"
        out += "## Summary\n\n"
        if let points = state.summary?.points, !points.isEmpty {
            out += points.map { "- \($0)" }.joined(separator: "\n") + "\n\n"
        } else {
            out += "_No summary._\n\n"
        }
        out += "## Decisions\n\n"
        if let decisions = state.summary?.decisions, !decisions.isEmpty {
            out += decisions.map { "- \($0.text) _(\(shortClock($0.time)))_" }.joined(separator: "\n") + "\n\n"
        } else {
            out += "_None recorded._\n\n"
        }
        out += "## Action items\n\n"
        if state.actionItems.isEmpty {
            out += "_None recorded._\n\n"
        } else {
            out += "| Done | Owner | Task | Due | Time |\n|---|---|---|---|---|\n"
            for item in state.actionItems {
                out +=
                    "| \(item.done ? "yes" : "") | \(cell(item.owner)) | \(cell(item.task)) | \(cell(item.due)) | "
                    + "\(shortClock(item.time)) |\n"
            }
            out += "\n"
        }
        out += "## Transcript\n\n"
        for paragraph in paragraphs(state.segments) {
            let text = paragraph.map(\.text).joined(separator: " ")
            out += "**\(state.name(of: paragraph[0].speaker))** _\(shortClock(paragraph[0].start))_: \(text)\n\n"
        }
        return out
    }

    /// The recognizer cuts one person's talk into segments at its windows and pauses; in the
    /// minutes, consecutive segments of one speaker are one paragraph while the pause before each
    /// is under 3 s and the paragraph began less than a minute before.
    static func paragraphs(_ segments: [TranscriptSegment]) -> [[TranscriptSegment]] {
        var out: [[TranscriptSegment]] = []
        for segment in segments {
            if let last = out.last?.last, let first = out.last?.first, last.speaker == segment.speaker,
                segment.start - last.end < 3, segment.start - first.start < 60
            {
                out[out.count - 1].append(segment)
            } else {
                out.append([segment])
            }
        }
        return out
    }
}
