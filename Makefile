# msk-cds: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mskcds-installed

.PHONY: setup install run test test-fast lint clean test-servers

## setup: the Python install and the test servers (idempotent).
setup: install test-servers

## install: create .venv and install the project editable with its test extras (idempotent).
install: $(STAMP)

# torch/torchvision first and pinned: pip takes these exact builds from this machine's disk
# (README, "Why torch 2.14.1"); any other spec would be a multi-GB download.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

## test-servers: the real servers tests/integration starts (idempotent; quick when installed):
## Orthanc + its DICOMweb plugin (Debian packages) and the FHIR test server (tools/fhir-server, npm ci).
ORTHANC := /usr/sbin/Orthanc
ORTHANC_DICOMWEB := /usr/share/orthanc/plugins/libOrthancDicomWeb.so
FHIR_SERVER_MODULES := tools/fhir-server/node_modules/.package-lock.json
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
test-servers: $(ORTHANC) $(ORTHANC_DICOMWEB) $(FHIR_SERVER_MODULES)

# policy-rc.d (only when none exists) keeps the package's own service off port 8042: tests start their own.
$(ORTHANC) $(ORTHANC_DICOMWEB):
	$(SUDO) sh -ec 'if [ ! -e /usr/sbin/policy-rc.d ]; then printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d; \
	  chmod +x /usr/sbin/policy-rc.d; trap "rm -f /usr/sbin/policy-rc.d" EXIT; fi; \
	  apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb'

$(FHIR_SERVER_MODULES): tools/fhir-server/package.json tools/fhir-server/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js >= 20.19 with npm (the FHIR test server runs on it)"; exit 1; }
	cd tools/fhir-server && npm ci --no-audit --no-fund --loglevel=error

## run: the main job on its embedded default (no server configured, none installed: Python only).
run: install
	$(BIN)/mskcds demo

## test: setup, then every test (slow and integration tests included).
test: setup
	$(BIN)/python -m pytest

## test-fast: what a developer runs while iterating (no server tests, so no test servers).
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not integration"

lint: install
	$(BIN)/ruff check app cds_hooks schemas tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
