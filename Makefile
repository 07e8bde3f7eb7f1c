# One-command set-up, run and test. Every target installs what it needs into .venv first.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-fast lint format train-reader train-evidence bench-quality bench-conversations bench-documents bench-speed bench-scale bench-scale-engine bench-soak bench-servers test-generator bench-generator clean

install: $(STAMP)

# torch==2.13.0 first: it is the CPU build on disk; a bare `torch` would pull the CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/articlebot build
	$(BIN)/articlebot run --chat-without-token

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

# Seconds: the pure rules alone (tests/unit/: no model, no index, no emulator). Run it while editing;
# run `make test` before committing.
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests/unit

# Against a real model server: GENERATOR_URL (its OpenAI-compatible /v1 URL), GENERATOR_MODEL and, if it needs one,
# GENERATOR_API_KEY, exported or as `make test-generator GENERATOR_URL=…`. Generated answers on the bundled article,
# checked as tests/test_generator.py checks the emulator's; skipped, saying so, without GENERATOR_URL. Not in `test`.
test-generator: install
	$(BIN)/python -m pytest tests/live -ra

# About 85 minutes on 2 cores where bf16 measures faster, 2 to 3 hours in fp32, then the evidence model's 75: fine-tunes
# the reader on ../shared/data/squad/train, the evidence model from it (SQuAD sentences and BoolQ's training part),
# then calibrates both on the data they held out. Writes bot/reader_model/ and bot/evidence_model/.
train-reader: install
	$(BIN)/python training/train_reader.py
	$(MAKE) train-evidence

# About 75 minutes on 2 cores: the evidence model alone (from the shipped reader: 45 minutes on SQuAD and BoolQ into
# build/evidence-base, then one epoch more with yes/no questions made from SQuAD's), then the calibrators (25
# minutes). Writes bot/evidence_model/ and bot/reader_model/calibration.json.
train-evidence: install
	$(BIN)/python training/train_evidence.py --out build/evidence-base
	$(BIN)/python training/train_evidence.py --init build/evidence-base --yes-no --epochs 1 --lr 2e-5
	$(BIN)/python training/calibrate_reader.py

bench-quality: install
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/quality.py --held-out
	$(BIN)/python benchmarks/boolq.py
	$(BIN)/python benchmarks/devset.py

bench-conversations: install
	$(BIN)/python benchmarks/conversations.py

bench-documents: install
	$(BIN)/python benchmarks/documents.py

bench-speed: install
	$(BIN)/python benchmarks/speed.py

bench-scale: install
	$(BIN)/python benchmarks/scale.py

# About 12 minutes: the bot on the Discord API emulator, 50 members asking, voting and commenting for 10 minutes
# (MINUTES=2 for a shorter run); per-minute latency, RSS, fds and threads, and every question replied to once.
MINUTES ?= 10
bench-soak: install
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES)

# About 40 minutes and 18 GB of memory at its 1M size: corpora built, loaded and asked through the engine.
bench-scale-engine: install
	$(BIN)/python benchmarks/engine_scale.py

# About 20 minutes on 2 quiet cores (30-45 shared): 1,000 servers with five generated documents each (25 built
# from scratch, the others derived from them), questions from random servers; SERVERS_ARGS=--quick: under a minute.
SERVERS_ARGS ?=
bench-servers: install
	$(BIN)/python benchmarks/servers.py $(SERVERS_ARGS)

# Against the model server GENERATOR_URL names (as for test-generator; says so and stops without one): the sentences
# the check keeps, their citations, answers in replies and times, on the Normans + Rhine questions and the development
# set. As long as the server takes for about 800 questions; `LIMIT=20` for a smoke run.
LIMIT ?=
bench-generator: install
	$(BIN)/python benchmarks/generator.py $(if $(LIMIT),--limit $(LIMIT))

clean:
	rm -rf $(VENV) data/index build .pytest_cache .ruff_cache
