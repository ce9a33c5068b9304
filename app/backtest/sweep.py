"""Parameter sweeps: every combination of parameter values and tickers, one process per core.

Bars are loaded once per ticker in the parent and handed to the workers (numpy arrays pickle
cheaply); each worker runs one spec and writes that run's report, and the parent prints one
summary table sorted as the combinations were given.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from app.backtest.bars import Bars
from app.backtest.errors import BacktestError
from app.backtest.report import report_dict, sweep_row, write_report
from app.backtest.run import Spec, load_bars, run

logger = logging.getLogger(__name__)


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """``{'a': ['1', '2'], 'b': ['x']}`` -> ``[{'a': '1', 'b': 'x'}, {'a': '2', 'b': 'x'}]``."""
    if not grid:
        return [{}]
    names = list(grid)
    return [dict(zip(names, values, strict=True))
            for values in itertools.product(*(grid[k] for k in names))]


def run_dir(out: Path, spec: Spec) -> Path:
    tag = "_".join(f"{k}-{v}" for k, v in spec.params.items()) or "defaults"
    return out / f"{spec.ticker}_{tag}"


def _job(spec: Spec, data: tuple[Bars, int], out: Path | None,
         charts: bool) -> tuple[tuple[str, ...], dict[str, Any]]:
    result = run(spec, data)
    if out is not None:
        write_report(result, run_dir(out, spec), charts=charts)
    return sweep_row(result), report_dict(result)


def _key(spec: Spec) -> tuple[str, str | None]:
    return spec.ticker, str(spec.csv) if spec.csv else None


def run_sweep(specs: list[Spec], out: Path | None, *, workers: int | None = None,
              charts: bool = False,
              on_done: Callable[[int, int, Spec, tuple[str, ...] | str], None] | None = None,
              ) -> list[tuple[Spec, tuple[str, ...] | None, dict[str, Any] | str]]:
    """Run every spec; return (spec, table row or None, report dict or the error text)."""
    data: dict[tuple[str, str | None], tuple[Bars, int] | str] = {}
    for s in specs:
        key = _key(s)
        if key not in data:
            try:
                data[key] = load_bars(s)
            except BacktestError as e:  # this ticker's runs fail; the others go on
                data[key] = str(e)
    results: list[Any] = [None] * len(specs)
    todo = []
    done_count = 0
    for k, s in enumerate(specs):
        if isinstance(data[_key(s)], str):
            results[k] = (s, None, data[_key(s)])
            done_count += 1
            if on_done is not None:
                on_done(done_count, len(specs), s, results[k][2])
        else:
            todo.append(k)
    if not todo:
        return results
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    # fork starts workers at once with the plugins already imported, but forking a process
    # that runs other threads can copy a lock some thread holds; then (and where there is no
    # fork) spawn fresh interpreters instead.
    single = threading.active_count() == 1
    method = "fork" if single and "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method)) as pool:
        futures = {pool.submit(_job, specs[k], data[_key(specs[k])], out, charts): k
                   for k in todo}
        for n, fut in enumerate(as_completed(futures), start=done_count + 1):
            k = futures[fut]
            try:
                row, rep = fut.result()
                results[k] = (specs[k], row, rep)
            except BacktestError as e:
                results[k] = (specs[k], None, str(e))
            except Exception as e:  # noqa: BLE001 - one broken run must not lose the others
                logger.exception("backtest %s %s failed", specs[k].ticker, specs[k].params)
                results[k] = (specs[k], None, f"{type(e).__name__}: {e}")
            if on_done is not None:
                on_done(n, len(specs), specs[k], results[k][1] or results[k][2])
    return results
