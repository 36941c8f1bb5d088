# msk-cds: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mskcds-installed

.PHONY: setup run test test-fast lint clean

## setup: create .venv and install the project editable with its test extras (idempotent).
setup: $(STAMP)

# torch/torchvision first and pinned: pip takes these exact builds from this machine's disk
# (README, "Why torch 2.14.1"); any other spec would be a multi-GB download.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

## run: the main job on its embedded default (no server configured).
run: setup
	$(BIN)/mskcds demo

## test: setup, then every test (slow and integration tests included).
test: setup
	$(BIN)/python -m pytest

## test-fast: what a developer runs while iterating.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not integration"

lint: setup
	$(BIN)/ruff check app cds_hooks schemas tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
