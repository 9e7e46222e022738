public import ParleyAudio

/// Groups speech segments, as the voice activity detector closes them, into the stretches sent
/// to the recognizer: neighbouring segments join while the stretch stays within the backend's
/// preferred window and the pause before the next is short; a window of 0 sends each alone.
/// A window is released as soon as the next segment cannot join it, or when the voice activity
/// detector has settled a pause's length past its end.
public struct TranscriptionWindows: Sendable {
    public struct Window: Sendable, Hashable {
        public var index: Int
        public var start: Double
        public var end: Double
        public var segments: Int
    }

    public let preferred: Double
    /// The longest pause kept inside one window.
    public let maxPause: Double
    private var open: Window?
    private var count = 0

    public init(preferred: Double, maxPause: Double = 2) {
        self.preferred = preferred
        self.maxPause = maxPause
    }

    /// Adds a closed speech segment; returns the window it closed, if any.
    public mutating func add(_ segment: SpeechSegment) -> [Window] {
        var closed: [Window] = []
        if var current = open {
            if segment.end - current.start <= preferred, segment.start - current.end <= maxPause {
                current.end = segment.end
                current.segments += 1
                open = current
                return []
            }
            closed.append(current)
            open = nil
        }
        let window = Window(index: count, start: segment.start, end: segment.end, segments: 1)
        count += 1
        if preferred <= 0 { closed.append(window) } else { open = window }
        return closed
    }

    /// Releases the open window once no segment can join it any more: `time` is the point
    /// before which no new speech segment can start (``VoiceActivityDetector/settledUntil``),
    /// `now` how far the audio has been analysed. A segment that begins after a pause longer
    /// than `maxPause` cannot join, and neither can one still going on at `now` when the window
    /// with it would pass `preferred` (it would end after `now`): the window need not wait for
    /// the end of the speech that follows it.
    public mutating func advance(to time: Double, now: Double? = nil) -> [Window] {
        guard let current = open else { return [] }
        let pauseTooLong = time - current.end > maxPause
        let tooLong = now.map { $0 - current.start > preferred } ?? false
        guard pauseTooLong || tooLong else { return [] }
        open = nil
        return [current]
    }

    /// The window being formed (not released yet), if any.
    public var openWindow: Window? { open }
    /// The index the next new window will have.
    public var nextIndex: Int { count }

    public mutating func finish() -> [Window] {
        defer { open = nil }
        return open.map { [$0] } ?? []
    }
}
