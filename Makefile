# Quick start:  make run   (registry on 127.0.0.1:5000, storage in ./data)
#               make test  (sets up .venv and runs the whole suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/dockyard serve $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check oci registry storage_backends auth runtime dockyard bench tests
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The benchmark against CNCF distribution (needs `apt-get install docker-registry wrk`); see bench/README.md.
BENCH_STAMP := $(VENV)/.bench-$(shell cksum pyproject.toml | cut -d' ' -f1)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	@rm -f $(VENV)/.bench-*
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
