import ParleyCommand
import ParleyExtractive
import ParleyNeural
import ParleyOpenAI
public import ParleyPipeline
import ParleyPocketSphinx
import ParleyWhisper

extension PluginRegistry {
    /// Every backend that ships with Parley.
    public static var builtIn: PluginRegistry {
        var registry = PluginRegistry()
        registry.register(WhisperTranscriber.self)
        registry.register(PocketSphinxTranscriber.self)
        registry.register(CommandTranscriber.self)
        registry.register(OpenAITranscriber.self)
        registry.register(ExtractiveSummarizer.self)
        registry.register(OpenAIChatSummarizer.self)
        registry.register(NeuralDiarizer.self)
        registry.register(CommandDiarizer.self)
        return registry
    }
}
