import ArgumentParser
import ParleyAudio

struct Diarize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print who spoke when in a recording.")

    @Argument(help: "An audio file in any format libsndfile reads.")
    var file: String

    func run() async throws {
        let analyzed = try AudioAnalyzer().analyze(path: file)
        print(analyzed.info, analyzed.frames.count)
    }
}
