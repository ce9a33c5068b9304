"""``autotrader guards`` over the real control socket (issue 10): the running engine's limits
read and changed, bad values refused with the engine's message, loosening in LIVE mode only
with the app's PIN (checked by the app, never logged), and the command line as a process
against the headless demo app, then against the DB with the app stopped."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest

from app.control.client import ControlClient
from app.control.guards import run
from app.control.server import ControlServer, socket_path
from app.control.service import ControlService
from app.engine.guard_edit import EDITS_KEY
from app.security import PinGuard
from tests.control.conftest import cli, start_app, stop_app
from tests.engine._guard_edit_child import build

PIN = "482913"


@pytest.fixture
def live_channel(short_dir: Path):
    """A LIVE-mode engine (simulated broker: nothing leaves) behind the real socket."""
    engine = build(short_dir / "d", "live")
    PinGuard(engine.system).set_pin(PIN)
    server = ControlServer(ControlService(engine), socket_path(short_dir / "d")).start()
    yield engine
    server.close()
    engine.close()
    engine.system.close()
    engine.market.close()


def ask(short_dir: Path, req: dict) -> dict:
    with ControlClient.connect(short_dir / "d") as c:
        return c.request(req)


def test_live_loosening_needs_the_apps_pin(live_channel, short_dir, caplog):
    engine = live_channel
    caplog.set_level(logging.DEBUG)
    listed = ask(short_dir, {"cmd": "guards"})
    assert listed["ok"] and listed["mode"] == "live"
    assert {g["name"]: g["value"] for g in listed["guards"]}["algo_max_drawdown_pct"] == 25.0
    # Bad values: the engine's message, nothing stored.
    for bad in ("nan", "inf", "-3", "1e300", "12x"):
        ans = ask(short_dir, {"cmd": "guards_set", "name": "algo_max_drawdown_pct",
                              "value": bad})
        assert not ans["ok"] and "algo_max_drawdown_pct" in ans["error"], ans
    assert engine.system.get_setting(EDITS_KEY) is None
    # Tightening: no PIN.
    ans = ask(short_dir, {"cmd": "guards_set", "name": "algo_max_drawdown_pct", "value": 10})
    assert ans["ok"] and ans["change"]["new"] == 10 and not ans["change"]["loosened"]
    assert engine.guards.limits.algo_max_drawdown_pct == 10
    # Loosening: refused without the PIN and with a wrong one; the right one works.
    check = ask(short_dir, {"cmd": "guards_check", "name": "algo_max_drawdown_pct",
                            "value": "off"})
    assert check["ok"] and check["loosens"] and check["needs_pin"]
    no_pin = ask(short_dir, {"cmd": "guards_set", "name": "algo_max_drawdown_pct",
                             "value": "off"})
    assert not no_pin["ok"] and "needs the PIN" in no_pin["error"]
    wrong = ask(short_dir, {"cmd": "guards_set", "name": "algo_max_drawdown_pct",
                            "value": "off", "pin": "000000"})
    assert not wrong["ok"] and "Wrong PIN" in wrong["error"]
    assert engine.guards.limits.algo_max_drawdown_pct == 10
    right = ask(short_dir, {"cmd": "guards_set", "name": "algo_max_drawdown_pct",
                            "value": "off", "pin": PIN})
    assert right["ok"] and right["change"]["loosened"], right
    assert engine.guards.limits.algo_max_drawdown_pct == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert PIN not in logged and "000000" not in logged
    assert "algo_max_drawdown_pct changed from the command line from 10 % to off" in logged


def test_command_line_without_a_terminal_refuses_loosening(live_channel, short_dir):
    args = argparse.Namespace(action="set", name="max_rejections", value="10")
    with ControlClient.connect(short_dir / "d") as c:
        ans = run(c, args, running=True, interactive=False)
    assert not ans["ok"] and "needs your PIN" in ans["error"]
    assert live_channel.guards.limits.max_rejections == 3
    with ControlClient.connect(short_dir / "d") as c:  # tightening goes through
        ans = run(c, argparse.Namespace(action="set", name="max_rejections", value="2"),
                  running=True, interactive=False)
    assert ans["ok"] and live_channel.guards.limits.max_rejections == 2


@pytest.mark.slow
def test_guards_command_running_then_stopped(short_dir: Path) -> None:
    base = short_dir
    app = start_app(base, "--speed", "20")
    try:
        r = cli(base, "guards", "set", "algo_max_drawdown_pct", "15")
        assert r.returncode == 0, r.stderr
        assert "algo_max_drawdown_pct: 25 % -> 15 %" in r.stdout
        r = cli(base, "guards", "set", "algo_max_drawdown_pct", "nan")
        assert r.returncode == 1 and "not a finite number" in r.stderr
        r = cli(base, "guards", "set", "algo_max_orders_per_day")
        assert r.returncode == 2 and "needs NAME and VALUE" in r.stderr
        listed = json.loads(cli(base, "guards", "--json").stdout)
        assert {g["name"]: g["value"] for g in listed["guards"]}["algo_max_drawdown_pct"] == 15
        assert listed["running"] is True
    finally:
        assert stop_app(app) == 0
    assert "algo_max_drawdown_pct changed from the command line from 25 % to 15 %" in (
        base / "app.out").read_text()
    # Stopped: read from the DB, the change kept, marked as changed, with its history.
    r = cli(base, "guards")
    assert r.returncode == 0, r.stderr
    assert "the database (app not running)" in r.stdout and "15 % *" in r.stdout
    assert "algo_max_drawdown_pct: 25 % -> 15 %" in r.stdout
    r = cli(base, "guards", "set", "algo_max_orders_per_day", "50")
    assert r.returncode == 0 and "100 -> 50" in r.stdout, r.stderr
    app = start_app(base, "--speed", "20")
    try:
        listed = json.loads(cli(base, "guards", "--json").stdout)
        got = {g["name"]: g["value"] for g in listed["guards"]}
        assert (got["algo_max_drawdown_pct"], got["algo_max_orders_per_day"]) == (15, 50)
    finally:
        stop_app(app)


def test_command_line_pin_typed_at_the_terminal(live_channel, short_dir, monkeypatch):
    """The PIN as typed at a terminal (getpass needs a real terminal, which a test has not:
    the prompt alone is replaced), checked by the app over the socket."""
    import app.control.guards as g

    typed = iter(["111111", PIN])
    monkeypatch.setattr(g, "_ask_pin", lambda interactive: next(typed))
    args = argparse.Namespace(action="set", name="algo_max_orders_per_day", value="off")
    with ControlClient.connect(short_dir / "d") as c:
        wrong = run(c, args, running=True, interactive=True)
        assert not wrong["ok"] and "Wrong PIN" in wrong["error"]
        assert live_channel.guards.limits.algo_max_orders_per_day == 100
        right = run(c, args, running=True, interactive=True)
    assert right["ok"] and right["change"]["loosened"]
    assert live_channel.guards.limits.algo_max_orders_per_day == 0
    assert PinGuard(live_channel.system).failures == 0  # the right PIN clears the count
