# The two commands a fresh machine needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUM    := $(shell cksum pyproject.toml | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(SUM)
RUNTIME_STAMP := $(VENV)/.runtime-$(SUM)
PIP    := $(BIN)/python -m pip --disable-pip-version-check --quiet
REPORT ?= report

.PHONY: demo test install install-runtime system-deps bench clean

## demo: set up (runtime dependencies only) and run `kubetune report` on the bundled sample.
demo: install-runtime
	$(BIN)/kubetune report --out $(REPORT)

## test: set up (Python deps + Debian packages the tests need) and run the whole suite.
test: install system-deps
	$(BIN)/python -m pytest -q

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

# The test stamp implies the runtime one (the test extras are a superset).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing kubetune, its dependencies and the test tools into $(VENV) (log: $(VENV)/pip.log)"
	$(PIP) install -e '.[test]' > $(VENV)/pip.log 2>&1 || { grep -v '^WARNING: Location' $(VENV)/pip.log; exit 1; }
	rm -f $(VENV)/.installed-* $(VENV)/.runtime-* && touch $@ $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing kubetune and its runtime dependencies into $(VENV) (log: $(VENV)/pip.log)"
	$(PIP) install -e . > $(VENV)/pip.log 2>&1 || { grep -v '^WARNING: Location' $(VENV)/pip.log; exit 1; }
	rm -f $(VENV)/.runtime-* && touch $@

system-deps:
	scripts/ensure-system-packages.sh

## bench: run the scale and accuracy benchmarks (minutes; results go to benchmarks/README.md by hand).
bench: install system-deps
	$(PIP) install -e '.[test,bench]' >> $(VENV)/pip.log 2>&1
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(REPORT) .pytest_cache
