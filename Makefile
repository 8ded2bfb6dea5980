# The two commands of the README:
#   make demo   create .venv, install corpus, run the demo pipeline (pipelines/demo.toml)
#   make test   create .venv, install corpus with its test extras, lint, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean browser

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "corpus needs Python 3.11 or newer: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)

# torch first and pinned (TORCH): the CPU build on this machine's disk, not a CUDA download
TORCH ?= torch==2.13.0

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[train]' $(TORCH)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]' $(TORCH)
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/corpus run pipelines/demo.toml

test: $(VENV)/.installed-test browser
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

# Debian's headless Chromium, for the report's rendering test: installed when missing and this
# is root on Debian (CI); otherwise that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get \
	  >/dev/null 2>&1 && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get \
	  install -y -qq --no-install-recommends chromium >/dev/null; }; } || \
	  echo "chromium is not installed: the report's browser test will be skipped"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/filters.py
	$(BIN)/python bench/exact.py
	$(BIN)/python bench/minhash.py
	$(BIN)/python bench/scrub.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/tokenizer.py
	$(BIN)/python bench/token_counts.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/train.py
	test -d out/demo/model || $(MAKE) demo    # bench/eval.py judges the demo's model
	$(BIN)/python bench/eval.py

clean:
	rm -rf out .pytest_cache .ruff_cache
