# Parley's commands. `make demo` and `make test` each do all setup first.
SWIFT ?= swift
ASAN_BUILD := .build-asan
# A throwaway PostgreSQL on loopback for the store and server tests (scripts/test-postgres.sh).
TEST_POSTGRES := /tmp/parley-test-postgres
# print_suppressions=0: the suppression counts would be extra lines on the CLI's standard error.
export LSAN_OPTIONS := suppressions=$(CURDIR)/lsan.supp:print_suppressions=0

.PHONY: setup demo build test lint bench clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build -c release --product parley

# The main job: synthesize a three-person meeting, then transcribe, attribute and summarize it
# with the default plugins (whisper, extractive), writing minutes, subtitles and JSON. The
# generator's espeak-ng voices are told apart by the classic diarizer only (Docs/diarization.md);
# then a real meeting excerpt (AMI, Tests/Fixtures/ami) goes through the default diarizer
# (auto: the neural one that setup installed).
demo: build
	.build/release/parley make-meeting data/demo
	.build/release/parley process data/demo/meeting.wav --out data/demo/out --format json,md,srt,vtt,txt,rttm \
	  --title "Release sync (demo)" --diarizer classic --verbose
	.build/release/parley process Tests/Fixtures/ami/ami_trn09/meeting.wav --out data/demo/real \
	  --format json,md,rttm --title "A real meeting (AMI excerpt)"
	@echo "Minutes: data/demo/out/meeting.md (ground truth in data/demo/reference.txt) and data/demo/real/meeting.md"

lint:
	$(SWIFT) format lint --strict -r Sources Tests Plugins benchmarks/load Package.swift

# Every test, under AddressSanitizer and LeakSanitizer, with a PostgreSQL started for them and
# stopped after (a Swift test run past 30 minutes has hung: the watchdog prints where its threads
# are and stops it); then the neural diarizer's clustering (Python, no server), the web app in a
# real browser (screenshots in test-output/browser/), the processes of a cluster, and the
# OpenAPI document against the server (schemathesis).
test: lint
	@scripts/setup.sh --test
	$(SWIFT) build --build-tests --sanitize=address --scratch-path $(ASAN_BUILD)
	@scripts/test-postgres.sh stop $(TEST_POSTGRES)
	url=$$(scripts/test-postgres.sh start $(TEST_POSTGRES)) && trap 'scripts/test-postgres.sh stop $(TEST_POSTGRES)' EXIT && \
	  PARLEY_TEST_POSTGRES_URL=$$url PARLEY_BIN=$(CURDIR)/$(ASAN_BUILD)/debug/parley \
	    scripts/watchdog.sh 1800 $(SWIFT) test --skip-build --no-parallel --sanitize=address --scratch-path $(ASAN_BUILD) && \
	  PARLEY_BIN=$(CURDIR)/$(ASAN_BUILD)/debug/parley .venv/bin/python -m pytest -q Tests/Neural Tests/Whisper Tests/Browser Tests/Cluster Tests/API

# Accuracy and speed against the peers; rewrites Docs/benchmarks.md (about 35 minutes):
# the audio front and diarizer (run.py), the whole pipeline (pipeline.py), the WebSocket hub
# (hub.py), fan-out across two nodes on PostgreSQL (cluster.py), the read model
# (readmodel.py), both diarizers on real speech, also on excerpts nothing was tuned on
# (real.py), word error rate on real speech
# beside faster-whisper alone (real_wer.py), decoding every kind of recording
# beside the ffmpeg command line (decode.py), a meeting from standard input at real time
# (live.py), and search over 10,000 hour-long meetings on both databases (search.py). Each
# script rewrites its own section only.
bench:
	@scripts/setup.sh --bench
	$(SWIFT) build -c release --product parley
	.venv/bin/python benchmarks/run.py
	.venv/bin/python benchmarks/pipeline.py
	.venv/bin/python benchmarks/hub.py
	.venv/bin/python benchmarks/cluster.py --skip-build
	.venv/bin/python benchmarks/readmodel.py --skip-build
	.venv/bin/python benchmarks/real.py --skip-build
	.venv/bin/python benchmarks/real_wer.py --skip-build
	.venv/bin/python benchmarks/voices.py --skip-build
	.venv/bin/python benchmarks/decode.py --skip-build
	.venv/bin/python benchmarks/live.py --skip-build
	.venv/bin/python benchmarks/search.py --skip-build

clean:
	rm -rf .build $(ASAN_BUILD) data bench-output
