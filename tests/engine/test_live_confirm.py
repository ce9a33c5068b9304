"""Headless LIVE runs ask for the PIN in the terminal before anything can trade."""

import os
import subprocess
import sys
from pathlib import Path

from app.config import load_settings
from app.engine.runner import confirm_live
from app.security import PinGuard
from db.system import SystemStore

ROOT = Path(__file__).resolve().parents[2]


def live_settings(data_dir: Path):
    return load_settings(data_dir / "none.toml", env={
        "APCA_API_KEY_ID": "PK" "TESTTESTTESTTEST00", "APCA_API_SECRET_KEY": "not-a-real-secret",
        "AUTOTRADER_MODE": "live", "AUTOTRADER_DATA_DIR": str(data_dir)})


def set_pin(data_dir: Path, pin: str) -> None:
    system = SystemStore(data_dir / "system.db")
    PinGuard(system).set_pin(pin)
    system.close()


def test_no_terminal_refuses(data_dir, capsys):
    set_pin(data_dir, "246813")
    assert not confirm_live(live_settings(data_dir), interactive=False, ask=lambda _: "246813")
    assert "no terminal" in capsys.readouterr().err


def test_no_pin_set_refuses(data_dir, capsys):
    assert not confirm_live(live_settings(data_dir), interactive=True, ask=lambda _: "246813")
    assert "none is set yet" in capsys.readouterr().err


def test_wrong_then_right_pin(data_dir, capsys):
    set_pin(data_dir, "246813")
    answers = iter(["111111", "246813"])
    assert confirm_live(live_settings(data_dir), interactive=True, ask=lambda _: next(answers))
    out = capsys.readouterr()
    assert "Wrong PIN. 4 tries left." in out.err and "LIVE mode confirmed." in out.out


def test_five_wrong_pins_lock_and_refuse(data_dir, capsys):
    set_pin(data_dir, "246813")
    assert not confirm_live(live_settings(data_dir), interactive=True, ask=lambda _: "0000")
    assert "Locked for 30 s" in capsys.readouterr().err
    system = SystemStore(data_dir / "system.db")
    assert PinGuard(system).locked_for() > 0  # the lockout is shared with the window's pad
    system.close()


def test_headless_live_without_terminal_exits_before_connecting(data_dir):
    set_pin(data_dir, "246813")
    # Port 9 on loopback refuses connections: if the guard failed, nothing leaves the machine.
    env = dict(os.environ, APCA_API_KEY_ID="PK" "TESTTESTTESTTEST00",
               APCA_API_SECRET_KEY="not-a-real-secret", AUTOTRADER_MODE="live",
               AUTOTRADER_DATA_DIR=str(data_dir),
               AUTOTRADER_ALPACA_TRADING_URL="http://127.0.0.1:9",
               AUTOTRADER_ALPACA_DATA_URL="http://127.0.0.1:9",
               AUTOTRADER_ALPACA_STREAM_URL="ws://127.0.0.1:9/v2/iex",
               AUTOTRADER_ALPACA_TRADE_STREAM_URL="ws://127.0.0.1:9/stream")
    r = subprocess.run([sys.executable, "main.py", "run", "--headless"], cwd=ROOT, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "needs your PIN" in r.stderr and "Traceback" not in r.stderr
    system = SystemStore(data_dir / "system.db")
    assert system.open_orders() == [] and system.list_algorithms() == []
    system.close()
