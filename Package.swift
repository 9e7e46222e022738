// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Parley",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "parley", targets: ["parley"]),
        .library(name: "ParleyAudio", targets: ["ParleyAudio"]),
        .library(name: "ParleyPluginAPI", targets: ["ParleyPluginAPI"]),
        .library(name: "ParleyPipeline", targets: ["ParleyPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian, found with pkg-config; each has a local shim header.
        .systemLibrary(
            name: "CSndFile", path: "CModules/CSndFile", pkgConfig: "sndfile",
            providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(
            name: "CFFTW", path: "CModules/CFFTW", pkgConfig: "fftw3f",
            providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(
            name: "CFFmpeg", path: "CModules/CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswresample-dev", "libavutil-dev"])]),
        // AMR-NB and AMR-WB (phone recordings), which FFmpeg's own decoders cannot read past a
        // silence sent as comfort noise (DTX).
        .systemLibrary(
            name: "COpenCoreAMR", path: "CModules/COpenCoreAMR", pkgConfig: "opencore-amrnb",
            providers: [.apt(["libopencore-amrnb-dev", "libopencore-amrwb-dev"])]),
        // The C audio front: decoding, resampling, STFT features, pitch. One public header.
        .target(
            name: "CAudioFront",
            dependencies: ["CSndFile", "CFFTW", "CFFmpeg", "COpenCoreAMR"],
            path: "CModules/CAudioFront",
            cSettings: [.unsafeFlags(["-O3", "-ffast-math"])],
            // pkg-config names one library per system module; FFmpeg's decoding needs four, AMR two.
            linkerSettings: [
                .linkedLibrary("avcodec"), .linkedLibrary("swresample"), .linkedLibrary("avutil"),
                .linkedLibrary("opencore-amrwb"),
            ]
        ),
        .target(
            name: "ParleyAudio",
            dependencies: [
                "CAudioFront",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CPocketSphinx", path: "CModules/CPocketSphinx", pkgConfig: "pocketsphinx",
            providers: [.apt(["libpocketsphinx-dev", "libsphinxbase-dev"])]),
        // What a plugin implements; plugins depend on this and nothing else of Parley's.
        .target(
            name: "ParleyPluginAPI",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ParleyWhisper", dependencies: ["ParleyPluginAPI"], path: "Plugins/Whisper",
            resources: [.copy("worker.py")], swiftSettings: swiftSettings),
        // Neural diarization (segmentation-3.0 + CAM++ on onnxruntime) in a Python worker. The
        // setup scripts beside it (install_models.py, convert_campplus.py) are not resources.
        .target(
            name: "ParleyNeural", dependencies: ["ParleyPluginAPI"], path: "Plugins/Neural",
            exclude: ["install_models.py", "convert_campplus.py"],
            resources: [.copy("worker.py"), .copy("diarization.py")], swiftSettings: swiftSettings),
        .target(
            name: "ParleyCommand", dependencies: ["ParleyPluginAPI"], path: "Plugins/Command",
            swiftSettings: swiftSettings),
        .target(
            name: "ParleyPocketSphinx", dependencies: ["ParleyPluginAPI", "CPocketSphinx"],
            path: "Plugins/PocketSphinx", swiftSettings: swiftSettings),
        .target(
            name: "ParleyExtractive", dependencies: ["ParleyPluginAPI"], path: "Plugins/Extractive",
            swiftSettings: swiftSettings),
        .target(
            name: "ParleyOpenAI",
            dependencies: [
                "ParleyPluginAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Plugins/OpenAI", swiftSettings: swiftSettings),
        // The event protocol: the envelope, what events carry, the state they build, where they
        // go. Pure Swift: the hub and the store depend on it and on nothing that links C.
        .target(
            name: "ParleyEvents",
            dependencies: ["ParleyPluginAPI"],
            swiftSettings: swiftSettings
        ),
        // Stages, registry, alignment, exports: no HTTP.
        .target(
            name: "ParleyPipeline",
            dependencies: [
                "ParleyAudio", "ParleyPluginAPI", "ParleyEvents",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The registry with every plugin that ships with Parley.
        .target(
            name: "ParleyPlugins",
            dependencies: [
                "ParleyPipeline", "ParleyWhisper", "ParleyCommand", "ParleyPocketSphinx", "ParleyExtractive",
                "ParleyOpenAI", "ParleyNeural",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ParleySynth",
            dependencies: ["ParleyAudio"],
            swiftSettings: swiftSettings
        ),
        // Users, meetings, members, refresh tokens and the numbered event log, behind one protocol.
        .target(
            name: "ParleyStore",
            dependencies: [
                "ParleyEvents",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Per-meeting channels: numbering, persistence before delivery, replay, presence, backpressure.
        .target(
            name: "ParleyHub",
            dependencies: [
                "ParleyStore", "ParleyEvents",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What runs meetings outside HTTP: the processor that runs a meeting under a job lease, the
        // job runner and queue, queued batches, the worker. No Hummingbird, JWT or bcrypt.
        .target(
            name: "ParleyJobs",
            dependencies: [
                "ParleyHub", "ParleyStore", "ParleyEvents", "ParleyPipeline", "ParleyPluginAPI", "ParleyAudio",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP: routes, auth, uploads, the WebSocket endpoint, metrics, OpenAPI.
        .target(
            name: "ParleyServer",
            dependencies: [
                "ParleyHub", "ParleyStore", "ParleyEvents", "ParleyPipeline", "ParleyJobs", "ParleyAudio",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            resources: [.copy("Resources/openapi.json"), .copy("Resources/web")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "parley",
            dependencies: [
                "ParleyAudio",
                "ParleySynth",
                "ParleyEvents",
                "ParleyPipeline",
                "ParleyPlugins",
                "ParleyJobs",
                "ParleyServer",
                "ParleyStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        // The WebSocket load generator of the hub benchmark (benchmarks/hub.py).
        .executableTarget(
            name: "parley-load",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            path: "benchmarks/load",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyAudioTests",
            dependencies: ["ParleyAudio", "ParleyTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyPipelineTests",
            dependencies: [
                "ParleyPipeline", "ParleyEvents", "ParleyPlugins", "ParleySynth", "ParleyExtractive", "ParleyOpenAI",
                "ParleyCommand", "ParleyWhisper", "ParleyPocketSphinx", "ParleyNeural", "ParleyTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            exclude: ["StandIns"],
            swiftSettings: swiftSettings
        ),
        // What several test targets share: generated meetings, a fresh PostgreSQL database per test.
        .target(
            name: "ParleyTestSupport",
            dependencies: [
                "ParleySynth",
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyStoreTests",
            dependencies: [
                "ParleyStore", "ParleyEvents", "ParleyTestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyHubTests",
            dependencies: [
                "ParleyHub", "ParleyStore", "ParleyEvents", "ParleyTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyServerTests",
            dependencies: [
                "ParleyServer", "ParleyStore", "ParleyEvents", "ParleyPipeline", "ParleyJobs", "ParleyHub",
                "ParleyPlugins", "ParleyPluginAPI", "ParleyAudio",
                "ParleySynth",
                "ParleyTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyCLITests",
            dependencies: ["ParleyAudio", "ParleyTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
