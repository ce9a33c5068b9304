# Two commands do all the set-up on a fresh Debian / Raspberry Pi OS machine:
#   make run    install what is missing, then start AutoTrader (demo mode without API keys)
#   make test   install what is missing (dev tools too), then run the whole test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test lint typecheck bench bench-memory bundle clean

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

# Four test workers (pytest-xdist) on two cores: most of the suite's time is waiting on real
# processes, sockets and clocks (1,111 tests: 548 s on two workers, 416 s on four, with 6.9 min
# of CPU); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4
test: $(VENV)/.installed-dev
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n $(TEST_WORKERS) $(ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

# mypy over app/ and db/ ([tool.mypy] in pyproject.toml: strict on the money path).
typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

# Every benchmark prints its figures beside floors measured in the same run (BENCH_RESULT
# lines); the cheap ones run again pinned to one core (the Pi-like figure); one table at the end.
BENCH_LOG ?= $(VENV)/bench-results.log
BENCH_PINNED ?= "bench/bench_tick.py --ticks 300 --bars 200000" \
	"bench/bench_marketdb.py --bars 20000 --queries 5000" \
	"bench/bench_stream.py --bars 50000" "bench/bench_ui.py --first-frame-only"
bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -c
bench: $(VENV)/.installed-dev
	@rm -f $(BENCH_LOG)
	for f in bench/bench_*.py; do [ $$f = bench/bench_memory.py ] && continue; \
		echo "== $$f"; $(PY) $$f 2>&1 | tee -a $(BENCH_LOG) || exit 1; done
	for c in $(BENCH_PINNED); do echo "== taskset -c 0 $$c"; \
		taskset -c 0 $(PY) $$c 2>&1 | tee -a $(BENCH_LOG) || exit 1; done
	@echo; echo "== summary"; $(PY) bench/summary.py $(BENCH_LOG)

# The window's memory slope (issue 19): 10 minutes on the lock screen and 10 on the dashboard,
# each beside a bare QML window; its own target (1 MB/h), not a row of the ratio table.
bench-memory: $(VENV)/.installed-dev
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_memory.py --malloc

bundle: $(VENV)/.installed-dev
	bash packaging/build-bundle.sh --smoke

clean:
	rm -rf $(VENV) build dist *.egg-info
