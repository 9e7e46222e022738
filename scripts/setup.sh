#!/usr/bin/env bash
# Installs what Parley needs to build, test and run on Debian: the C libraries
# of the audio front, pkg-config, and espeak-ng + sox for the meeting generator.
# With --bench it also makes the project's Python venv (.venv) for the
# benchmarks and the scorer (pyannote.metrics, librosa, webrtcvad).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libsndfile1-dev libfftw3-dev libsamplerate0-dev espeak-ng sox)
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

if [ "${1:-}" = "--bench" ]; then
    if [ ! -x .venv/bin/python ]; then
        echo "setup: creating .venv"
        python3 -m venv .venv
    fi
    .venv/bin/pip install -q --disable-pip-version-check -r benchmarks/requirements.txt
fi
