import Foundation
import ParleyAudio
import ParleyTestSupport
import Testing

/// `parley diarize` on a generated meeting as people's recordings come (M4A, MP4 and MOV,
/// MKV, WebM, WMA, 3GP, made with the `ffmpeg` command line; a phone's AMR-NB made with sox,
/// alone and in 3GP): the same speakers and turns as from the WAV; broken ones end in one line.
@Suite(.serialized) struct ContainerCommandTests {
    static let containers: [(file: String, arguments: [String])] = [
        ("zoom.m4a", ["-c:a", "aac", "-b:a", "64k"]),
        ("phone.m4a", ["-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"]),
        ("screen.mp4", ["-c:a", "aac", "-c:v", "libx264", "-preset", "ultrafast"]),
        ("camera.mov", ["-c:a", "aac"]),
        ("meeting.mkv", ["-c:a", "libvorbis"]),
        ("browser.webm", ["-c:a", "libopus", "-b:a", "32k"]),
        ("meet.webm", ["-c:a", "libopus", "-c:v", "libvpx", "-deadline", "realtime"]),
        ("old.wma", ["-c:a", "wmav2"]),
        ("phone.3gp", ["-c:a", "aac", "-ar", "16000", "-ac", "1"]),
    ]

    static func turns(_ path: String) throws -> [SpeakerTurn] {
        try RTTM.parse(String(contentsOfFile: path, encoding: .utf8))
    }

    @Test func everyContainerDiarizesLikeTheWAV() throws {
        let dir = try ParleyCommandTests.scratch()
        let made = try ParleyCommandTests.parley("make-meeting", dir, "--seed", "4")
        #expect(made.status == 0, "\(made.errors)")
        let wav = dir + "/meeting.wav"
        let base = try ParleyCommandTests.parley("diarize", wav, "--diarizer", "classic", "--rttm", dir + "/wav.rttm")
        #expect(base.status == 0, "\(base.errors)")
        let expected = try Self.turns(dir + "/wav.rttm")
        #expect(Set(expected.map(\.speaker)).count == 3)
        var paths: [String] = []
        for container in Self.containers {
            paths.append(dir + "/" + container.file)
            try FFmpegCommandLine.convert(wav, to: paths.last!, container.arguments)
        }
        // A phone's AMR-NB, as a .amr file and in 3GP.
        let amr = dir + "/phone.amr"
        try AMRFile.write(from: wav, to: amr)
        try FFmpegCommandLine.run(["-i", amr, "-c:a", "copy", dir + "/phone-amr.3gp"])
        paths += [amr, dir + "/phone-amr.3gp"]
        for path in paths {
            let file = (path as NSString).lastPathComponent
            let rttm = path + ".rttm"
            let run = try ParleyCommandTests.parley("diarize", path, "--diarizer", "classic", "--rttm", rttm)
            #expect(run.status == 0, "\(file): \(run.errors)")
            guard run.status == 0 else { continue }
            let found = try Self.turns(rttm)
            #expect(Set(found.map(\.speaker)).count == 3, "\(file)")
            let agreement = ParleyCommandTests.attributedFraction(reference: expected, hypothesis: found)
            #expect(agreement > 0.95, "\(file): \(agreement) of the WAV's speech given to the same speaker")
        }
    }

    @Test func brokenRecordingsEndInOneLine() throws {
        let dir = try ParleyCommandTests.scratch()
        let made = try ParleyCommandTests.parley("make-meeting", dir, "--seed", "5")
        #expect(made.status == 0)
        let m4a = dir + "/whole.m4a"
        try FFmpegCommandLine.run(["-i", dir + "/meeting.wav", "-c:a", "aac", "-movflags", "+faststart", m4a])
        let data = try Data(contentsOf: URL(fileURLWithPath: m4a))
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: dir + "/cut.m4a"))
        let film = dir + "/film.mp4"
        try FFmpegCommandLine.run([
            "-f", "lavfi", "-i", "color=c=black:s=64x64:r=5", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast",
            film,
        ])
        for (path, words) in [(dir + "/cut.m4a", "truncated"), (film, "no audio stream")] {
            let run = try ParleyCommandTests.parley("diarize", path)
            #expect(run.status != 0, "\(path)")
            #expect(run.errors.split(separator: "\n").count == 1, "one line: \(run.errors)")
            #expect(run.errors.contains(words), "\(run.errors)")
        }
    }
}
