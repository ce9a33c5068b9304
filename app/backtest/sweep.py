"""Parameter sweeps: every combination of parameter values and tickers, each run isolated.

Bars are loaded once per ticker in the parent and travel with each job (numpy arrays pickle
cheaply), with the plugin's source when it is not a built-in, so a job runs the same in a
local child process and on a Dask worker (``pool.py``). A run whose plugin exits, crashes or
hangs ends with a report of what happened up to then; the other runs go on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.backtest.bars import Bars
from app.backtest.errors import BacktestError
from app.backtest.pool import dask_client, run_dask, run_isolated
from app.backtest.report import report_dict, sweep_row, write_report
from app.backtest.result import result_from_fills
from app.backtest.run import Spec, load_bars, resolve_plugin, run
from db.timeutil import iso_z

logger = logging.getLogger(__name__)

STALL_S = 60.0  # a child whose minute has not moved for this long is killed


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


@dataclass
class Job:
    spec: Spec
    data: tuple[Bars, int]
    out: Path | None = None          # where the child writes the run's report (None: nowhere)
    charts: bool = False
    source: tuple[str, str] | None = None  # (file name, text) of a user plugin, shipped
    keep_curve: bool = False         # return the equity curve too (walk-forward stitching)
    flat: bool = False               # the report goes in ``out`` itself (a single run)
    progress: bool = False           # draw a progress bar (a single run in a terminal)

    def report_dir(self) -> Path | None:
        if self.out is None:
            return None
        return self.out if self.flat else run_dir(self.out, self.spec)


def plugin_source(spec: Spec) -> tuple[str, str] | None:
    """The plugin file to ship with its jobs, or None for a built-in (installed everywhere)."""
    import algorithm

    info = resolve_plugin(spec.plugin, spec.plugin_dirs)
    if info.path is None or Path(info.path).parent == Path(algorithm.__path__[0]):
        return None
    return Path(info.path).name, Path(info.path).read_text(encoding="utf-8")


def _shipped_dir(source: tuple[str, str]) -> Path:
    name, text = source
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    d = Path(tempfile.gettempdir()) / f"autotrader-plugins-{os.getuid()}" / digest
    path = d / name
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = d / f".{name}.{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return d


def _outcome(job: Job, result: Any, files: list[str] | None = None) -> dict[str, Any]:
    from app.backtest.report import format_table

    out: dict[str, Any] = {"ok": True, "row": sweep_row(result), "report": report_dict(result),
                           "stopped": result.stopped, "all_failed": result.all_failed,
                           "table": format_table(result), "files": files or []}
    if job.keep_curve:
        out["ts"], out["equity"] = result.ts, result.equity
    return out


def job_fn(job: Job, emit: Callable[[Any], None], beacon: Any) -> dict[str, Any]:
    """One run (in a child process): the result's table row and report dict."""
    spec = job.spec
    if job.source is not None:
        spec = replace(spec, plugin_dirs=(_shipped_dir(job.source),))
    progress = None
    if job.progress:
        from app.backtest.progress import ProgressBar

        progress = ProgressBar(f"{spec.plugin} {spec.ticker}")
    try:
        result = run(spec, job.data, progress, beacon=beacon, on_fill=emit)
    except BacktestError as e:
        return {"ok": False, "error": str(e)}
    finally:
        if progress is not None:
            progress.close()
    files = _write(job, result)
    return _outcome(job, result, files)


def _write(job: Job, result: Any) -> list[str]:
    where = job.report_dir()
    if where is None:
        return []
    return [p.name for p in write_report(result, where, charts=job.charts).values()]


def job_death(job: Job, why: str, fills: list[dict[str, Any]], minute: int) -> dict[str, Any]:
    """The report of a run whose process died or hung: the fills it made up to ``minute``."""
    bars, first = job.data
    spec = job.spec
    end = int(np.searchsorted(bars.ts, minute, side="right")) if minute else first + 1
    end = max(first + 1, min(len(bars), end))
    when = iso_z(minute) if minute else iso_z(int(bars.ts[first]))
    reason = f"{why} during run() at {when}; the run ended there"
    sub = bars.slice(first, end)
    result = result_from_fills(
        plugin=spec.plugin, ticker=bars.ticker, ts=sub.ts, close=sub.c, first_index=first,
        params=spec.params, capital=spec.capital, path=spec.path,
        fills=[f for f in fills if isinstance(f, dict)],
        decisions={"buy": 0, "sell": 0, "hold": 0}, refused=0, errors=1,
        problems=[{"timestamp": when, "kind": "stopped", "reason": reason}], elapsed_s=0.0)
    result.stopped = reason
    result.decisions = {k: sum(f["type"] == k for f in fills if isinstance(f, dict))
                        for k in ("buy", "sell")}
    return _outcome(job, result, _write(job, result))


def run_jobs(jobs: list[Job], *, workers: int | None = None, dask: str | None = None,
             client: Any = None, on_done: Callable[[int, dict[str, Any]], None] | None = None,
             ) -> list[dict[str, Any]]:
    """Every job, isolated, locally (``workers`` at once) or on a Dask cluster."""
    if dask is None and client is None:
        n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        return run_isolated(job_fn, jobs, job_death, workers=n, stall_s=STALL_S,
                            on_done=on_done)
    from app.backtest.pool import close_client

    own = client is None
    client = client or dask_client(dask)  # type: ignore[arg-type]
    try:
        remote = [replace(j, out=None) for j in jobs]  # reports come back, written here
        results = run_dask(client, job_fn, remote, job_death, stall_s=STALL_S,
                           on_done=on_done)
    finally:
        if own:
            close_client(client)
    for j, r in zip(jobs, results, strict=True):
        if j.out is not None and r.get("ok"):
            d = run_dir(j.out, j.spec)
            d.mkdir(parents=True, exist_ok=True)
            (d / "report.json").write_text(json.dumps(r["report"], indent=2) + "\n",
                                           encoding="utf-8")
    return results


def _key(spec: Spec) -> tuple[str, str | None]:
    return spec.ticker, str(spec.csv) if spec.csv else None


def run_sweep(specs: list[Spec], out: Path | None, *, workers: int | None = None,
              charts: bool = False, dask: str | None = None,
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
    todo: list[int] = []
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
    source = plugin_source(specs[todo[0]])
    jobs = [Job(specs[k], data[_key(specs[k])], out, charts, source)  # type: ignore[arg-type]
            for k in todo]
    counter = [done_count]

    def done(j: int, r: dict[str, Any]) -> None:
        counter[0] += 1
        if on_done is not None:
            on_done(counter[0], len(specs), specs[todo[j]],
                    r["row"] if r.get("ok") else f"failed: {r.get('error')}")

    for j, r in enumerate(run_jobs(jobs, workers=workers, dask=dask, on_done=done)):
        k = todo[j]
        results[k] = (specs[k], r["row"], r["report"]) if r.get("ok") else \
            (specs[k], None, r["error"])
    return results
