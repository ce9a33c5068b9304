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
