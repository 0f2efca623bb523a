# Gavel — run `make help` for the targets. Every target installs what it needs into .venv first.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL_INPUTS := requirements.txt constraints.txt libs/pyproject.toml $(wildcard services/*/pyproject.toml) $(wildcard tools/*/pyproject.toml)

.PHONY: help up test lint fmt typecheck protos bench lock clean unit

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): $(INSTALL_INPUTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=68" wheel
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP) ## create or refresh .venv (editable installs, pinned versions)

up: $(STAMP) ## start the whole cluster on embedded defaults (Ctrl-C stops it)
	$(BIN)/gavel up

protos: $(STAMP) ## regenerate the Python stubs from protos/
	$(BIN)/python -m gavel_kit.protogen

lint: $(STAMP) ## ruff format check, ruff lint, mypy strict, import-linter, generated stubs current
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m gavel_kit.protogen --check
	$(BIN)/lint-imports
	$(BIN)/mypy

fmt: $(STAMP) ## apply ruff formatting and autofixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: $(STAMP) ## only the fast unit tests
	$(BIN)/pytest -q -m "not integration and not e2e" -p no:cacheprovider

test: lint ## lint first, then the whole suite (unit, integration, e2e)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) ## the benchmark suite (figures go to docs/benchmarks/, summarised in docs/benchmarks.md)
	$(BIN)/gavel bench matrix --out docs/benchmarks.md

lock: ## re-resolve the pinned versions from a throwaway venv
	rm -rf /tmp/gavel-lock && $(PYTHON) -m venv /tmp/gavel-lock
	/tmp/gavel-lock/bin/pip install --quiet --upgrade pip && /tmp/gavel-lock/bin/pip install --quiet -r <(grep -v '^-c' requirements.txt)
	( echo '# Pinned versions of every third-party package (pip freeze of a clean install). Refresh with `make lock`.'; \
	  /tmp/gavel-lock/bin/pip freeze --exclude-editable | grep -v '^gavel-' ) > constraints.txt

clean: ## remove the venv and local data under var/
	rm -rf $(VENV) var
