"""matplotlib is an optional extra (``charts``): the Pi kiosk and the bundle go without it.

Without it every chart writer says so in one clear line and the rest is written: ``report
--out`` (a real process, real system DB) writes its CSVs, the daily summary goes without its
picture, the status page's SVG sparkline needs nothing. matplotlib is hidden the way a missing
package looks to Python (``sys.modules[name] = None``: ``import`` raises ImportError), since
uninstalling it from the test venv is not an option.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from app.config import load_settings
from app.ops import charts
from app.ops.operations import Operations
from db import performance as perf
from db.system import SystemStore

ROOT = Path(__file__).resolve().parents[2]
HIDE = "import sys; sys.modules['matplotlib'] = None"


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_with_matplotlib_the_charts_are_available() -> None:
    assert charts.charts_unavailable() is None


def test_without_matplotlib_the_png_writers_say_why_and_the_svg_still_draws(
        no_matplotlib: None, tmp_path: Path) -> None:
    assert charts.charts_unavailable() == charts.NO_MATPLOTLIB
    assert "matplotlib is not installed" in charts.NO_MATPLOTLIB
    assert "'charts' extra" in charts.NO_MATPLOTLIB
    with pytest.raises(charts.ChartsUnavailable, match="matplotlib is not installed"):
        charts.equity_png(tmp_path / "a.png", "t", [("2024-06-03", 1.0), ("2024-06-04", 2.0)])
    with pytest.raises(charts.ChartsUnavailable, match="matplotlib is not installed"):
        charts.day_png(tmp_path / "d.png", "t", {"A": 1.0}, [("2024-06-03", 1.0)])
    assert not list(tmp_path.iterdir())
    assert charts.sparkline_svg([1.0, 2.0, 1.5]).startswith("<svg")


def test_without_matplotlib_the_daily_summary_goes_without_its_picture(
        no_matplotlib: None, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(tmp_path / "none.toml", env={"AUTOTRADER_DATA_DIR": str(tmp_path)})
    # The missing-matplotlib path returns before the engine is asked anything: a bare object
    # stands in for it (the drawn summary is tested with a real engine in test_performance_week).
    ops = Operations(object(), settings)
    with caplog.at_level(logging.WARNING, logger="app.ops.operations"):
        assert ops._summary_chart(date(2024, 6, 4), [], {}, "t") is None
        assert ops._summary_chart(date(2024, 6, 5), [], {}, "t") is None
    said = [r.getMessage() for r in caplog.records if "matplotlib" in r.getMessage()]
    assert said == [f"daily summary without its picture: {charts.NO_MATPLOTLIB}"]  # once
    assert not (tmp_path / "charts").exists()


def _snapshots(db: Path) -> None:
    system = SystemStore(db)
    try:
        for i, day in enumerate(("2024-06-03", "2024-06-04", "2024-06-05")):
            perf.record_day(system.conn, [
                {"day": day, "algo_id": perf.ACCOUNT, "name": "Account", "value": 100_000 + i,
                 "cash": 100_000, "status": "demo", "taken": "close", "taken_at": day},
                {"day": day, "algo_id": 1, "name": "Demo SMA AAPL", "ticker": "AAPL",
                 "value": 20_000 + 10 * i, "cash": 20_000, "status": "running",
                 "taken": "close", "taken_at": day}])
    finally:
        system.close()


def test_report_out_without_matplotlib_writes_the_csvs_and_says_why(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "AUTOTRADER_DATA_DIR": str(tmp_path / "d")}
    settings = load_settings(env=env)
    settings.system_db_path.parent.mkdir(parents=True, exist_ok=True)
    _snapshots(settings.system_db_path)
    out = tmp_path / "rep"
    r = subprocess.run(
        [sys.executable, "-c", f"{HIDE}; import runpy; sys.argv[0] = 'main.py'; "
         "runpy.run_path('main.py', run_name='__main__')",
         "report", "--since", "2024-06-01", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "no PNG charts: matplotlib is not installed" in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "periods.csv"]
    assert "equity.csv" in r.stdout and ".png" not in r.stdout
    rows = (out / "equity.csv").read_text().splitlines()
    assert rows[0].startswith("day,account") and len(rows) == 4
