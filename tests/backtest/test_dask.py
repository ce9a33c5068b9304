"""Sweeps on a real Dask cluster (a LocalCluster on 127.0.0.1): the same results as the local
process pool, a user plugin's source shipped to the workers, isolation kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("distributed", reason="the 'research' extra (distributed) is not installed")

from app.backtest.run import Spec  # noqa: E402
from app.backtest.sweep import run_sweep  # noqa: E402
from tests.backtest.conftest import PLUGINS  # noqa: E402


def test_a_sweep_on_a_local_dask_cluster_equals_the_local_run(ref_csv, tmp_path):
    base = Spec("sma_crossover", "REF", csv=ref_csv, capital=10_000.0, slippage_bps=1.0)
    specs = [replace(base, params={"sma_short": s, "sma_long": lg})
             for s, lg in ((5, 30), (10, 40), (20, 50))]
    # A user plugin (not installed on workers): its source travels with the job; it exits
    # its process at call 10, which ends that run only.
    specs.append(Spec("exits", "REF", csv=ref_csv, capital=10_000.0, plugin_dirs=(PLUGINS,)))
    local = run_sweep(specs[:3], tmp_path / "local", workers=2)
    local += run_sweep(specs[3:], tmp_path / "local", workers=1)
    remote = run_sweep(specs[:3], tmp_path / "dask", dask="local")
    remote += run_sweep(specs[3:], tmp_path / "dask", dask="local")
    assert [r[1] for r in remote] == [r[1] for r in local]
    for (_, _, a), (_, _, b) in zip(local, remote, strict=True):
        for k in ("metrics", "decisions", "refused", "errors", "stopped", "problems"):
            assert a[k] == b[k], k
    assert remote[3][2]["stopped"].startswith("the plugin process exited with code 1 during "
                                              "run() at 2024-03-04T14:39:00Z")
    assert (tmp_path / "dask" / "REF_sma_short-5_sma_long-30" / "report.json").exists()


_TOUCHED: list[int] = []


def _where_am_i(item, emit, beacon):  # noqa: ANN001, ANN201 - a task of run_isolated
    """In a run's child: its pid, its parent's (the worker's forkserver), whether the NYSE
    calendar was built before the run started, and what an earlier run left in a global."""
    import os

    from db.calendar import nyse

    warm = nyse.cache_info().currsize == 1
    seen = list(_TOUCHED)
    _TOUCHED.append(item)
    return {"pid": os.getpid(), "parent": os.getppid(), "warm": warm, "seen": seen}


def _death(item, why, messages, minute):  # noqa: ANN001, ANN201
    return {"died": why}


def test_each_dask_worker_forks_its_runs_from_one_warm_forkserver():
    """A Dask worker starts one forkserver, with the replay and the calendar loaded, and forks
    every run from it: each run a new process (nothing left by the run before), none building
    the calendar again (that was ~2 s a run, 12 s on a loaded machine)."""
    from app.backtest.pool import close_client, dask_client, run_dask

    client = dask_client("local")
    try:
        out = run_dask(client, _where_am_i, list(range(8)), _death)
        workers = len(client.scheduler_info()["workers"])
    finally:
        close_client(client)
    assert all("pid" in r for r in out), out
    assert len({r["pid"] for r in out}) == 8  # a process per run: isolation kept
    assert all(r["seen"] == [] for r in out)  # no state carried from run to run
    assert all(r["warm"] for r in out)  # the calendar came with the fork
    assert len({r["parent"] for r in out}) <= workers  # one forkserver per worker, reused
