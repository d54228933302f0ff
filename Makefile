# Two entry points for a fresh machine: `make demo` and `make test`. Both set everything up first.
# `make demo` installs only what the demo needs (the package and its core dependencies); `make test` adds the test
# extras (text models, tracking, export, timm, Spark, selenium, pytest) on top.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup data demo test benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip, not uv or poetry: pip honours this machine's torch constraints and its local wheel cache.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(DEMO_STAMP) data

data: $(DEMO_STAMP)
	@bash scripts/ensure-fashion-mnist.sh $(BIN)/python

demo: setup
	$(BIN)/warmstart demo

test: $(TEST_STAMP) data
	@bash scripts/ensure-chromium.sh
	HF_HUB_OFFLINE=1 WARMSTART_OFFLINE=1 $(BIN)/python -m pytest -q -n auto --dist loadgroup

benchmark: setup
	$(BIN)/python benchmarks/transfer_vs_scratch.py

clean:
	rm -rf $(VENV) runs .pytest_cache
