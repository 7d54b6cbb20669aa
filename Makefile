# The README's two commands, and a few helpers. Nothing clever.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test
DEMO_OUT ?= out/demo

.PHONY: demo test test-browser lint format bench samples clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11 or newer is needed (found: $(PYTHON))"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/voiceprep run data/samples --out $(DEMO_OUT)
	@echo "open $(DEMO_OUT)/report.html in a browser; clips are in $(DEMO_OUT)/clips/; try: $(BIN)/voiceprep check $(DEMO_OUT)/clips/carol/qwen-tts.wav -f qwen-tts"

test: $(TSTAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q --ignore=tests/browser

# The report in headless Chromium (needs the Debian packages chromium and chromium-driver);
# screenshots go to out/ci-artifacts/.
test-browser: $(TSTAMP)
	$(BIN)/python -m pytest -q tests/browser

lint: $(TSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check pipeline tests benchmarks data/make_samples.py

format: $(TSTAMP)
	$(BIN)/ruff format pipeline tests benchmarks data/make_samples.py
	$(BIN)/ruff check --fix .

bench: $(TSTAMP)
	$(BIN)/python benchmarks/io_bench.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/accuracy.py

samples: $(TSTAMP)
	$(BIN)/python data/make_samples.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
