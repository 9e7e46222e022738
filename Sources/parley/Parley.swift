import ArgumentParser

@main
struct Parley: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley",
        abstract: "Meeting audio to speaker turns, transcripts and action items.",
        subcommands: [
            Serve.self, Worker.self, ProcessMeeting.self, Batch.self, Plugins.self, Diarize.self, MakeMeeting.self,
            Features.self,
            Bench.self,
        ]
    )
}
