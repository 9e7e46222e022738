# Parley's commands. `make demo` and `make test` each do all setup first.
SWIFT ?= swift
ASAN_BUILD := .build-asan
export LSAN_OPTIONS := suppressions=$(CURDIR)/lsan.supp

.PHONY: setup demo build test lint bench clean

setup:
	@scripts/setup.sh

build: setup
	$(SWIFT) build -c release --product parley

# The main job for now: synthesize a three-person meeting and print who spoke when.
demo: build
	.build/release/parley make-meeting data/demo
	.build/release/parley diarize data/demo/meeting.wav --rttm data/demo/diarization.rttm
	@echo "RTTM written to data/demo/diarization.rttm; ground truth in data/demo/reference.rttm"

lint:
	$(SWIFT) format lint --strict -r Sources Tests Package.swift

# Every test, under AddressSanitizer and LeakSanitizer.
test: setup lint
	$(SWIFT) build --build-tests --sanitize=address --scratch-path $(ASAN_BUILD)
	PARLEY_BIN=$(CURDIR)/$(ASAN_BUILD)/debug/parley \
	  $(SWIFT) test --skip-build --sanitize=address --scratch-path $(ASAN_BUILD)

# Accuracy and speed against the peers; rewrites Docs/benchmarks.md.
bench: setup
	@scripts/setup.sh --bench
	$(SWIFT) build -c release --product parley
	.venv/bin/python benchmarks/run.py

clean:
	rm -rf .build $(ASAN_BUILD) data bench-output
