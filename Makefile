# Two commands matter: `make run` and `make test`. Both set everything up on a fresh machine and are
# idempotent: stamps under .stamps/ make the second run skip what is already done.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
SAMPLES := samples

.PHONY: setup run analyze test lint typecheck layers unit bench models samples clean

setup: $(STAMPS)/system $(STAMPS)/deps $(STAMPS)/samples $(STAMPS)/web models

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMPS)/system: scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	@mkdir -p $(STAMPS) && touch $@

# torch goes in first, alone, so pip takes the local CPU wheel and nothing later drags in CUDA.
$(STAMPS)/deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[convert,train,dev,cluster]'
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/samples: scripts/make_samples.py $(STAMPS)/deps
	$(BIN)/python scripts/make_samples.py $(SAMPLES)
	@touch $@

samples: $(STAMPS)/samples

# The web app's npm packages (Chart.js, Swagger UI, ReDoc), exactly as the lockfile pins them, install scripts
# off (.npmrc); the server serves them from node_modules, so the app and the API docs need no internet and no
# third-party code is copied into the repository.
$(STAMPS)/web: src/feedlens/web/package.json src/feedlens/web/package-lock.json src/feedlens/web/.npmrc $(STAMPS)/system
	cd src/feedlens/web && npm ci --no-audit --no-fund
	@mkdir -p $(STAMPS) && touch $@

# Verifies every artifact's hash and fetches/builds only what is missing or corrupt.
models: $(STAMPS)/deps $(STAMPS)/system
	$(BIN)/feedlens store pull

# First run: ingests the sample photos and a small invented feed of posts for them into workspace "demo"; every run: prints a fresh demo key and a
# curl example, then serves the API (and its docs at /docs) on 127.0.0.1:8000 until Ctrl-C.
run: setup
	$(BIN)/feedlens store calibrate --if-needed
	@echo "set up; now: feedlens serve --demo $(SAMPLES) (it says what it does; Ctrl-C stops it)"
	$(BIN)/feedlens serve --demo $(SAMPLES)

analyze: setup
	$(BIN)/feedlens analyze $(SAMPLES) --format table

lint: $(STAMPS)/deps
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMPS)/deps
	$(BIN)/mypy

layers: $(STAMPS)/deps
	$(BIN)/lint-imports

# Two workers, a test file each at a time (module-scoped servers stay in one worker): much of the suite waits
# on servers, browsers and child processes, so two workers on two cores finish well before one.
unit: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: setup lint typecheck layers unit

# The naive baseline calls the nudenet package as its README shows; feedlens itself only takes its model
# file, so the package is installed for benchmarks alone and without its dependencies (opencv-headless).
bench: setup
	$(BIN)/pip install -q --no-deps nudenet==3.4.2
	$(BIN)/python benchmarks/run.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/safety_fp.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/analyzers_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/face_detectors.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/api_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/search_quality.py --out docs/benchmarks.md --doc docs/search.md
	$(BIN)/python benchmarks/categories_quality.py --out docs/benchmarks.md --doc docs/categories.md
	$(BIN)/python benchmarks/brands_quality.py --out docs/benchmarks.md --doc docs/brands.md
	$(BIN)/python benchmarks/training_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/insights_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/insights_recommend_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/al_simulation.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/search_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/startup_bench.py --out docs/benchmarks.md --before df8b54a
	$(BIN)/python benchmarks/labels_calibration.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/backbones.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/hostile_input.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/pose_quality.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/objects_quality.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/faces_quality.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/face_identity_bench.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/ocr_speed.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/ocr_gate_sides.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/cluster_bench.py --out docs/benchmarks.md

# Longer fuzzing than the bounded runs in `make test` (tests/fuzz/README.md): atheris on the decoder for
# FUZZ_SECONDS (its corpus and any crash input in build/fuzz/), then schemathesis and signed Rekognition
# calls against a fresh server for as long. FUZZ_DECODER_FLAGS= (empty) stops at known bugs too.
FUZZ_SECONDS ?= 600
FUZZ_DECODER_FLAGS ?= --tolerate-known
.PHONY: fuzz
fuzz: setup
	@mkdir -p build/fuzz
	$(BIN)/python -m tests.fuzz.fuzz_decoder --seed-corpus build/fuzz/decoder $(FUZZ_DECODER_FLAGS) -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -artifact_prefix=build/fuzz/ -print_final_stats=1
	$(BIN)/python -m tests.fuzz.fuzz_api --budget $(FUZZ_SECONDS) --examples 200 -v --out docs/benchmarks.md

clean:
	rm -rf $(STAMPS) $(SAMPLES) .mypy_cache .ruff_cache .pytest_cache
