"""``autotrader algo ...`` as the owner runs it over SSH: real processes.

The headless demo app runs in a subprocess; ``algo`` commands (other processes) go to it
through the control socket; with the app stopped the same commands change the DB directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.control.conftest import cli, start_app, stop_app

# A dozen CLI processes (0.6 s each idle, several seconds each on a loaded machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


def js(base: Path, *args: str) -> dict:
    r = cli(base, "algo", *args, "--json")
    assert r.stdout, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_running_app_then_not_running(short_dir: Path) -> None:
    base = short_dir
    app = start_app(base, "--speed", "20")
    try:
        listed = js(base, "list")
        assert listed["running"] is True and listed["mode"] == "demo"
        assert [a["ticker"] for a in listed["algorithms"]] == ["AAPL", "MSFT", "NVDA"]
        r = cli(base, "algo", "add", "sma_crossover", "AMD", "--capital", "1e9")
        assert r.returncode == 1 and "free capital" in r.stderr
        r = cli(base, "algo", "add", "sma_crossover", "AMD", "--capital", "2500",
                "--param", "sma_short=5", "--name", "From SSH")
        assert r.returncode == 0, r.stderr
        assert "created #4 From SSH" in r.stdout
        shown = js(base, "show", "4")
        assert shown["algorithm"]["params"] == {"sma_short": 5}
        # stop and sell one that holds shares (the demo has traded a few minutes by now)
        holder = next((a for a in js(base, "list")["algorithms"] if a["position"] > 0), None)
        if holder is not None:
            r = cli(base, "algo", "stop", str(holder["id"]), "--sell")
            assert r.returncode == 0, r.stderr
            after = js(base, "show", str(holder["id"]))
            assert after["algorithm"]["status"] == "stopped"
            assert any(o["reason"] == "liquidation on stop" for o in after["orders"])
        r = cli(base, "algo", "stop-all")
        assert r.returncode == 0 and "all algorithms stopped" in r.stdout
        assert {a["status"] for a in js(base, "list")["algorithms"]} == {"stopped"}
        table = cli(base, "algo", "list").stdout
        assert "DEMO mode, from the running app" in table and "From SSH" in table
    finally:
        assert stop_app(app) == 0
    out = (base / "app.out").read_text()
    assert "from the command line: created algorithm 4 'From SSH'" in out
    assert "from the command line: stop all" in out
    assert not (base / "d" / "control" / "autotrader.sock").exists()

    # The app is not running: the same commands work on the DB, with the same checks.
    listed = js(base, "list")
    assert listed["running"] is False
    assert {a["status"] for a in listed["algorithms"]} == {"stopped"}
    r = cli(base, "algo", "resume", "4")
    assert r.returncode == 0 and "running" in r.stdout, r.stderr
    r = cli(base, "algo", "add", "sma_crossover", "BAD!", "--capital", "100")
    assert r.returncode == 1 and "refused" in r.stderr
    r = cli(base, "algo", "add", "sma_crossover", "AMD", "--capital", "1e9")
    assert r.returncode == 1 and "free capital" in r.stderr
    r = cli(base, "algo", "delete", "2")
    assert r.returncode == 0, r.stderr
    ids = [a["id"] for a in js(base, "list")["algorithms"]]
    assert 2 not in ids and 4 in ids
    log = (base / "log" / "autotrader.log").read_text()
    assert "from the command line: resume algorithm 4" in log
    assert "from the command line: delete algorithm 2" in log

    # ... and the app picks the changes up when it starts again.
    app = start_app(base, "--speed", "20")
    try:
        listed = js(base, "list")
        assert listed["running"] is True
        assert {a["id"]: a["status"] for a in listed["algorithms"]}[4] == "running"
    finally:
        stop_app(app)


def test_live_changes_need_the_pin_on_a_terminal(short_dir: Path) -> None:
    """Without a terminal to type the PIN in, LIVE add / stop --sell / stop-all are refused
    before anything is built or sent (the keys point at a closed port: nothing leaves)."""
    # The fake key is built from two literals so no tracked file holds a key-shaped string.
    live = {"AUTOTRADER_MODE": "live", "APCA_API_KEY_ID": "PK" + "TESTKEY0" * 2,
            "APCA_API_SECRET_KEY": "secret-not-real-000000000000000000000000",
            "AUTOTRADER_ALPACA_TRADING_URL": "http://127.0.0.1:9"}
    for args in (["add", "sma_crossover", "AAPL", "--capital", "100"], ["stop", "1", "--sell"],
                 ["stop-all"]):
        r = cli(short_dir, "algo", *args, **live)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "LIVE mode needs your PIN" in r.stderr
        assert "secret-not-real" not in r.stdout + r.stderr
