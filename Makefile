# Two entry points for a fresh machine: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup data demo test benchmark clean

# pip, not uv or poetry: pip honours this machine's torch constraints and its local wheel cache.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP) data

data: $(STAMP)
	@bash scripts/ensure-fashion-mnist.sh $(BIN)/python

demo: setup
	$(BIN)/warmstart demo

test: setup
	@bash scripts/ensure-chromium.sh
	HF_HUB_OFFLINE=1 WARMSTART_OFFLINE=1 $(BIN)/python -m pytest -q

benchmark: setup
	$(BIN)/python benchmarks/transfer_vs_scratch.py

clean:
	rm -rf $(VENV) runs .pytest_cache
