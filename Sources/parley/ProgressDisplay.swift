import Foundation
import ParleyEvents
import ParleyPipeline

/// Shows a meeting's stages as its events arrive: a redrawn bar on a terminal, plain lines
/// otherwise (one per stage start, completion or failure). Writes to standard error.
struct ProgressDisplay {
    let label: String
    let terminal: Bool
    let showTranscript: Bool
    private var stage = "upload"
    /// Stages started and not yet completed: upload, diarization and transcription overlap.
    private var active: [String] = []
    private var transcriptionProgress = 0.0
    private var segments = 0
    /// The provisional transcript of speech still going on (a live recording).
    private var partial: String?
    private let started = Date()

    init(label: String, terminal: Bool = stderrIsTerminal, showTranscript: Bool = false) {
        self.label = label
        self.terminal = terminal
        self.showTranscript = showTranscript
    }

    mutating func show(_ event: MeetingEvent, state: MeetingState? = nil) {
        switch event.data {
        case .status(let status):
            if status.stage == .transcription, let p = status.progress { transcriptionProgress = p }
            if status.state != .progress { stage = status.stage.rawValue }
            let name = status.stage.rawValue
            switch status.state {
            case .started: if !active.contains(name) { active.append(name) }
            case .restarted: active = []
            case .completed, .failed: active.removeAll { $0 == name }
            case .progress: break
            }
            if !terminal, status.state != .progress {
                // The last status names the outcome once: "completed", not "completed completed".
                let final = status.stage == .completed || status.stage == .failed
                var line = "\(label): \(status.stage.rawValue)" + (final ? "" : " \(status.state.rawValue)")
                if let detail = status.detail { line += " (\(detail))" }
                if let elapsed = status.elapsed { line += String(format: " in %.2f s", elapsed) }
                printError(line)
            }
        case .transcript(let segment) where segment.provisional == true:
            // Speech still going on: shown on the redrawn line (terminal only), replaced later.
            partial = segment.text
        case .transcript(let segment) where segment.onlyRemoves:
            partial = nil
        case .transcript(let segment):
            partial = nil
            segments += 1
            if showTranscript {
                clear()
                printError("  [\(Exporter.shortClock(segment.start))] \(segment.speaker): \(segment.text)")
            }
        case .error(let failure):
            clear()
            printError("\(label): \(failure.stage.rawValue) failed: \(failure.message)")
        default:
            break
        }
        if terminal { draw() }
    }

    /// Upload and analysis count for a tenth, transcription for most, the rest for the end.
    private var fraction: Double {
        switch stage {
        case "upload", "diarization", "transcription": 0.05 + 0.8 * transcriptionProgress
        case "alignment": 0.87
        case "summarization": 0.92
        default: 1
        }
    }

    private func clear() { if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }

    func draw() {
        let line = String(
            format: "\r\u{1B}[K%@ [%@] %3d%% %@, %d segments, %.0f s", label, progressBar(fraction),
            Int(fraction * 100),
            active.isEmpty ? stage : active.joined(separator: "+"),
            segments, Date().timeIntervalSince(started))
        let heard = showTranscript ? partial.map { "  … " + String($0.suffix(60)) } ?? "" : ""
        FileHandle.standardError.write(Data((line + heard).utf8))
    }

    func finish() { if terminal { FileHandle.standardError.write(Data("\n".utf8)) } }
}

/// `[#######-----------------]`'s inside: `fraction` of 24 cells filled.
func progressBar(_ fraction: Double, width: Int = 24) -> String {
    let filled = max(0, min(width, Int((fraction * Double(width)).rounded())))
    return String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
}
