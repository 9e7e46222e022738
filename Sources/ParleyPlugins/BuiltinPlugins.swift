public import ParleyPipeline
import ParleyCommand
import ParleyExtractive
import ParleyPocketSphinx
import ParleyWhisper

extension PluginRegistry {
    /// Every backend that ships with Parley.
    public static var builtIn: PluginRegistry {
        var registry = PluginRegistry()
        registry.register(WhisperTranscriber.self)
        registry.register(PocketSphinxTranscriber.self)
        registry.register(CommandTranscriber.self)
        registry.register(ExtractiveSummarizer.self)
        return registry
    }
}
