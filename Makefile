# Quick start:  make run   (registry on 127.0.0.1:5000, storage in ./data)
#               make test  (sets up .venv and runs the whole suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PREFIX ?= $(HOME)/.local
# Each stamp names what is installed and the pyproject.toml it was installed from: an edit reinstalls.
HASH := $(shell cksum pyproject.toml | cut -d' ' -f1)
SERVE_STAMP := $(VENV)/.serve-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)
BENCH_STAMP := $(VENV)/.bench-$(HASH)

.PHONY: run install test lint bench clean

$(BIN)/pip:
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install -q --upgrade pip

# Serving needs only the package's own dependencies; the test and benchmark tools come on top.
$(SERVE_STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install -q -e .
	@rm -f $(VENV)/.serve-*
	@touch $@

$(TEST_STAMP): $(SERVE_STAMP)
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.test-*
	@touch $@

$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/pip install -q -e '.[test,bench]'
	@rm -f $(VENV)/.bench-*
	@touch $@

run: $(SERVE_STAMP)
	$(BIN)/dockyard serve $(CONFIG)

# Links the venv's `dockyard` into $(PREFIX)/bin (~/.local/bin; `sudo make install PREFIX=/usr/local` for root).
install: $(SERVE_STAMP)
	@mkdir -p $(PREFIX)/bin
	ln -sf $(abspath $(BIN))/dockyard $(PREFIX)/bin/dockyard

lint: $(TEST_STAMP)
	$(BIN)/ruff check oci registry storage_backends auth typedconfig runtime dockyard bench tests
	$(BIN)/mypy

test: $(TEST_STAMP) lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The benchmark against CNCF distribution (needs `apt-get install docker-registry wrk`); see bench/README.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
