# Two commands do all the set-up on a fresh Debian / Raspberry Pi OS machine:
#   make run    install what is missing, then start AutoTrader (demo mode without API keys)
#   make test   install what is missing (dev tools too), then run the whole test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test lint bench bundle clean

$(VENV)/.installed: pyproject.toml
	bash packaging/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) main.py $(ARGS)

test: $(VENV)/.installed-dev
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed-dev
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

bundle: $(VENV)/.installed-dev
	bash packaging/build-bundle.sh --smoke

clean:
	rm -rf $(VENV) build dist *.egg-info
