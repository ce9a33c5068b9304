"""``autotrader backtest`` end to end: report files, pictures, sweeps, and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["backtest", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_single_run_writes_the_report_and_charts(capsys, tmp_path, ref_csv):
    out_dir = tmp_path / "report"
    rc, out, err = run_cli(capsys, "sma_crossover", "REF", "--csv", ref_csv, "--out", out_dir,
                           "--slippage-bps", "0", "--capital", "25000")
    assert rc == 0, err
    assert "total return" in out and "Sharpe (daily)" in out and "max drawdown" in out
    assert "fills at the open of bar t" in out
    report = json.loads((out_dir / "report.json").read_text())
    m = report["metrics"]
    assert m["initial_capital"] == 25000 and m["bars"] == 1170 and m["sessions"] == 3
    assert m["trades"] > 5 and 0 <= m["win_rate"] <= 1 and m["max_drawdown"] <= 0
    assert report["conventions"]["sharpe_sortino"].startswith("daily returns")
    assert report["settings"]["fill"] == "open" and report["settings"]["slippage_bps"] == 0
    assert report["settings"]["data"] == str(ref_csv)
    with (out_dir / "trades.csv").open() as fh:
        trades = list(csv.DictReader(fh))
    assert len(trades) == m["trades"] + m["open_trades"]
    with (out_dir / "fills.csv").open() as fh:
        fills = list(csv.DictReader(fh))
    assert len(fills) == m["fills"] and fills[0]["type"] == "buy"
    assert float(fills[-1]["cash"]) > 0 and int(fills[-1]["position"]) >= 0
    import matplotlib.image as mpimg

    for name in ("price.png", "equity.png"):
        img = mpimg.imread(out_dir / name)
        assert img.shape[0] >= 400 and img.shape[1] >= 1000
        assert img[..., :3].std() > 0.05  # a real picture, not a blank canvas


def test_vector_and_exact_paths_agree_with_the_event_path(capsys, tmp_path, ref_csv):
    finals = {}
    for flag in ("", "--vector", "--exact"):
        out_dir = tmp_path / (flag or "event")
        args = ["sma_crossover", "REF", "--csv", ref_csv, "--out", out_dir, "--no-charts",
                "--end", "2024-03-04", "--slippage-bps", "2"] + ([flag] if flag else [])
        rc, _, err = run_cli(capsys, *args)
        assert rc == 0, err
        finals[flag] = json.loads((out_dir / "report.json").read_text())["metrics"]
    assert finals["--vector"] == finals[""]
    assert finals["--exact"]["final_equity"] == pytest.approx(finals[""]["final_equity"])
    assert finals["--exact"]["fills"] == finals[""]["fills"] > 0


def test_a_sweep_runs_every_combination(capsys, tmp_path, ref_csv):
    out_dir = tmp_path / "sweep"
    rc, out, err = run_cli(capsys, "sma_crossover", "REF", "--csv", ref_csv, "--out", out_dir,
                           "--param", "sma_short=5,10", "--param", "sma_long=30,40",
                           "--workers", "2", "--no-charts")
    assert rc == 0, err
    with (out_dir / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["params"] for r in rows) == sorted(
        f"sma_short={s} sma_long={lg}" for s in (5, 10) for lg in (30, 40))
    assert len({r["return"] for r in rows}) > 1  # the parameters matter
    assert all(f"sma_short={s} sma_long={lg}" in out for s in (5, 10) for lg in (30, 40))
    assert len(list(out_dir.glob("REF_*/report.json"))) == 4
    assert err.count("[") == 4  # one progress line per finished run


def test_a_sweep_over_tickers(capsys, tmp_path, ref_csv):
    rc, out, err = run_cli(capsys, "sma_crossover", "REF,COPY", "--csv", ref_csv, "--csv",
                           ref_csv, "--out", tmp_path / "t", "--vector", "--no-charts")
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith(("REF", "COPY"))]
    assert len(lines) == 2 and lines[0].split()[2:] == lines[1].split()[2:]


def test_bars_from_the_market_db(capsys, tmp_path, data_dir, market_store, ref_bars):
    market_store.insert_rows(
        ("REF", int(t), float(o), float(h), float(lo), float(c), int(v)) for t, o, h, lo, c, v
        in zip(ref_bars.ts, ref_bars.o, ref_bars.h, ref_bars.l, ref_bars.c, ref_bars.v,
               strict=True))
    rc, out, err = run_cli(capsys, "sma_crossover", "REF", "--data-dir", data_dir, "--start",
                           "2024-03-05", "--out", tmp_path / "db", "--no-charts")
    assert rc == 0, err
    assert "2024-03-05T14:30:00Z .. 2024-03-06T20:59:00Z (2 sessions, 780 bars)" in out


@pytest.mark.parametrize("args,message", [
    (["nope", "REF"], "no algorithm plugin named 'nope' (available: "),
    (["sma_crossover", "REF", "--param", "fast=3"],
     "plugin 'sma_crossover' has no parameter 'fast' (known: sma_short, sma_long)"),
    (["sma_crossover", "REF", "--param", "sma_short=ten"], "parameter 'sma_short' must be a whole number"),
    (["sma_crossover", "REF", "--param", "sma_short"], "write it as name=value"),
    (["sma_crossover", "REF", "--start", "2023-01-03"], "--start 2023-01-03 is before the data"),
    (["sma_crossover", "REF", "--end", "2025-01-03"], "--end 2025-01-03 is after the data"),
    (["sma_crossover", "REF", "--start", "2024-03-06", "--end", "2024-03-05"], "is after --end"),
    (["sma_crossover", "ref"], "'ref' is not a ticker symbol"),
    (["sma_crossover", "REF", "--capital", "-5"], "--capital must be positive"),
    (["buy_and_hold", "REF", "--vector"], "has no vectorised version"),
    (["sma_crossover", "REF", "MSFT"], "1 --csv file(s) for 2 ticker(s)"),
])
def test_bad_input_gets_a_message_not_a_traceback(capsys, ref_csv, tmp_path, args, message):
    rc, out, err = run_cli(capsys, *args, "--csv", ref_csv, "--out", tmp_path / "x")
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_bad_csv_and_missing_db_through_the_real_command(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close\n2024-03-04T14:30:00Z,1,1,1,1\n")
    env_home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
                "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": "/usr/bin:/bin"}
    for args, message in (
        (["--csv", str(bad)], "lacks column volume"),
        ([], "no market DB at"),
    ):
        p = subprocess.run([sys.executable, str(ROOT / "main.py"), "backtest", "sma_crossover",
                            "AAPL", *args], capture_output=True, text=True, timeout=60,
                           env=env_home, cwd=tmp_path)
        assert p.returncode == 2
        assert message in p.stderr and "Traceback" not in p.stderr


def test_recent_days_for_the_new_algorithm_flow(data_dir, market_store, ref_bars):
    from app.backtest.api import backtest_recent
    from app.config import load_settings

    market_store.insert_rows(
        ("REF", int(t), float(o), float(h), float(lo), float(c), int(v)) for t, o, h, lo, c, v
        in zip(ref_bars.ts, ref_bars.o, ref_bars.h, ref_bars.l, ref_bars.c, ref_bars.v,
               strict=True))
    settings = load_settings(None, overrides={"data_dir": str(data_dir)})
    result, report = backtest_recent(settings, "sma_crossover", "REF", days=2, capital=5000)
    assert report["start"] == "2024-03-05T14:30:00Z" and result.metrics.sessions == 2
    assert report["metrics"]["initial_capital"] == 5000
    result, report = backtest_recent(settings, "sma_crossover", "REF", days=10)
    assert result.metrics.sessions == 3  # all there is


def test_a_sweep_goes_on_when_one_ticker_has_no_data(capsys, tmp_path, data_dir, market_store,
                                                     ref_bars):
    market_store.insert_rows(
        ("REF", int(t), float(o), float(h), float(lo), float(c), int(v)) for t, o, h, lo, c, v
        in zip(ref_bars.ts, ref_bars.o, ref_bars.h, ref_bars.l, ref_bars.c, ref_bars.v,
               strict=True))
    rc, out, err = run_cli(capsys, "sma_crossover", "REF,NODATA", "--data-dir", data_dir,
                           "--out", tmp_path / "s", "--vector")
    assert rc == 1
    assert [ln.split()[0] for ln in out.splitlines() if ln.startswith("REF")] == ["REF"]
    assert "failed: NODATA" in err and "has no bars for NODATA" in err
    assert "Traceback" not in err


def test_an_unusable_market_db_is_a_message(capsys, tmp_path, data_dir):
    (data_dir / "market.db").write_bytes(b"this is not a database" * 100)
    rc, out, err = run_cli(capsys, "sma_crossover", "REF", "--data-dir", data_dir)
    assert rc == 2 and "cannot read the market DB" in err and "Traceback" not in err


def test_a_report_folder_that_cannot_be_written(capsys, tmp_path, ref_csv):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, out, err = run_cli(capsys, "sma_crossover", "REF", "--csv", ref_csv, "--out",
                           blocker / "sub", "--no-charts")
    assert rc == 2 and "Traceback" not in err and str(blocker) in err


def test_without_matplotlib_the_report_is_written_without_charts(capsys, tmp_path, ref_csv,
                                                                monkeypatch):
    """matplotlib is only needed for the PNGs: without it (``import matplotlib`` fails, as on
    an install without it) the run says so once and writes everything else."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    out_dir = tmp_path / "nocharts"
    rc, out, err = run_cli(capsys, "sma_crossover", "REF", "--csv", ref_csv, "--out", out_dir,
                           "--end", "2024-03-04")
    assert rc == 0, err
    assert "no PNG charts: matplotlib is not installed" in err
    assert {p.name for p in out_dir.iterdir()} == {"report.json", "trades.csv", "fills.csv"}
    assert "total return" in out and "price.png" not in out
