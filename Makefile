# The two commands a fresh machine needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PIP    := $(BIN)/python -m pip --disable-pip-version-check --quiet
REPORT ?= report

.PHONY: demo test install system-deps bench clean

## demo: set up and run `kubetune report` on the bundled sample; prints where the report is.
demo: install
	$(BIN)/kubetune report --out $(REPORT)

## test: set up (Python deps + Debian packages the tests need) and run the whole suite.
test: install system-deps
	$(BIN)/python -m pytest -q

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing kubetune and its dependencies into $(VENV) (log: $(VENV)/pip.log)"
	$(PIP) install -e '.[test,notebooks]' > $(VENV)/pip.log 2>&1 || { grep -v '^WARNING: Location' $(VENV)/pip.log; exit 1; }
	rm -f $(VENV)/.installed-* && touch $@

system-deps:
	scripts/ensure-system-packages.sh

## bench: run the scale and accuracy benchmarks (minutes; results go to benchmarks/README.md by hand).
bench: install system-deps
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(REPORT) .pytest_cache
