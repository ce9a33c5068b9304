"""A plugin copied from the original design (``from database.db_manager import ...``,
``from system_databse.system_db_manager import ...``) loads and trades unchanged: in the
engine's plugin worker processes, in a backtest, and in a fresh interpreter running the
backtest command (its run in a child process)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import db
from app.backtest.replay import run_event
from app.backtest.run import resolve_plugin
from app.engine.plugins import load_plugin
from tests.engine.conftest import PLUGINS, T0

LEGACY = Path(__file__).parent / "plugins_legacy"
ROOT = Path(__file__).resolve().parents[2]
REF_CSV = ROOT / "tests" / "backtest" / "data" / "ref_sma.csv"


def test_the_legacy_names_are_the_seed_functions():
    info = load_plugin("original_sma", [LEGACY])
    assert info.ok, info.error
    import database.db_manager as dm
    import system_databse.system_db_manager as sm

    assert dm.get_data_for_algorithm is db.get_data_for_algorithm
    assert sm.get_transactions is db.get_transactions
    assert not (ROOT / "database").exists() and not (ROOT / "system_databse").exists()


def test_legacy_plugin_trades_in_the_demo_engine_workers(make_engine, market_store, calendar):
    # A rising ticker: SMA 5 above SMA 20, so the plugin buys all-in once, then (reading its
    # transaction through the legacy get_transactions) holds.
    start = T0 - timedelta(minutes=40)
    rows = [("UPP", int(m.timestamp()), 50 + k * 0.1, 50 + k * 0.1, 50 + k * 0.1,
             50 + k * 0.1, 1000) for k, m in enumerate(calendar.minutes_between(start, T0))]
    market_store.insert_rows(rows)
    engine = make_engine(plugin_dirs=[LEGACY, PLUGINS])
    algo = engine.create_algorithm("original_sma", "UPP", 10_000)
    r0 = engine.run_tick(T0)
    assert engine._pool.processes is not None  # it really ran in a worker process
    assert engine._pool.processes.pids()
    assert algo not in r0.errors, r0.errors
    assert [(f["algo_id"], f["type"]) for f in r0.fills] == [(algo, "buy")]
    bought = r0.fills[0]["shares"]
    assert bought == int(10_000 * 0.99 // rows[-1][5])
    r1 = engine.run_tick(T0 + timedelta(minutes=1))
    assert algo not in r1.errors and not r1.fills
    assert engine.algorithm_view(algo).position == bought


def test_legacy_plugin_matches_the_db_import_twin_in_a_backtest(calendar, tmp_path):
    """Same rule written with ``from db import ...``: identical trades."""
    from app.backtest.bars import load_csv

    ref_bars = load_csv(REF_CSV, "REF", calendar)
    twin = (LEGACY / "original_sma.py").read_text().replace(
        "from database.db_manager import get_data_for_algorithm\n"
        "from system_databse.system_db_manager import get_transactions\n",
        "from db import get_data_for_algorithm, get_transactions\n")
    assert "database" not in twin
    (tmp_path / "modern_sma.py").write_text(twin)
    legacy = run_event(resolve_plugin("original_sma", (LEGACY,)), {}, ref_bars, 30, 10_000.0)
    modern = run_event(resolve_plugin("modern_sma", (tmp_path,)), {}, ref_bars, 30, 10_000.0)
    assert legacy.errors == 0 and len(legacy.fills) > 10
    assert legacy.fills == modern.fills


def test_legacy_plugin_in_the_backtest_command(tmp_path):
    """A fresh interpreter (nothing imported beforehand), the run in its child process."""
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": "/usr/bin:/bin"}
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[engine]\nplugin_dir = "{LEGACY}"\n')
    p = subprocess.run([sys.executable, str(ROOT / "main.py"), "backtest", "original_sma", "REF",
                        "--csv", str(REF_CSV), "--config", str(cfg), "--no-charts",
                        "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "original_sma" in p.stdout


