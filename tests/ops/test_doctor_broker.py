"""doctor's key and clock checks against the loopback Alpaca emulator, through the real
alpaca-py client (app.broker.alpaca)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main as cli

emulator_mod = pytest.importorskip("tests.fakes.alpaca_emulator")
pytest.importorskip("app.broker.alpaca")


@pytest.fixture
def emulator(calendar):
    emu = emulator_mod.AlpacaEmulator(calendar=calendar).start()
    yield emu
    emu.stop()


def point_at(emu, monkeypatch, data: Path, key: str | None = None) -> None:
    v = emu.setting_values()
    monkeypatch.setenv("APCA_API_KEY_ID", key or v["alpaca.key_id"])
    monkeypatch.setenv("APCA_API_SECRET_KEY", v["alpaca.secret_key"])
    monkeypatch.setenv("AUTOTRADER_ALPACA_TRADING_URL", v["alpaca.trading_url"])
    monkeypatch.setenv("AUTOTRADER_ALPACA_DATA_URL", v["alpaca.data_url"])
    monkeypatch.setenv("AUTOTRADER_DATA_DIR", str(data))


def run(capsys) -> tuple[int, str]:
    rc = cli(["doctor"])
    return rc, capsys.readouterr().out


def test_good_keys_and_a_synchronised_clock(emulator, monkeypatch, populated, capsys) -> None:
    point_at(emulator, monkeypatch, populated)
    rc, out = run(capsys)
    assert rc == 0, out
    assert "accepts the keys: account ACTIVE" in out
    assert any(line.split()[:2] == ["ok", "clock"] for line in out.splitlines())
    assert emulator.secret_key not in out and emulator.key_id not in out


def test_rejected_keys_say_what_to_do(emulator, monkeypatch, populated, capsys) -> None:
    point_at(emulator, monkeypatch, populated, key="PK" "WRONGWRONGWRONGWRONG")
    rc, out = run(capsys)
    assert rc == 1
    assert "rejected the API keys" in out
    assert "fix: copy the key id and secret again" in out
    assert "PK" "WRONGWRONGWRONGWRONG" not in out


def test_clock_drift_against_the_broker(calendar, monkeypatch, populated, capsys) -> None:
    # The emulator's clock runs 30 s ahead of this machine: this machine is 30 s behind.
    emu = emulator_mod.AlpacaEmulator(
        calendar=calendar, now=lambda: datetime.now(UTC) + timedelta(seconds=30)).start()
    try:
        point_at(emu, monkeypatch, populated)
        rc, out = run(capsys)
    finally:
        emu.stop()
    assert rc == 1
    clock_line = next(line for line in out.splitlines() if "  clock " in line)
    assert "FAIL" in clock_line and "behind" in clock_line
    assert "timedatectl set-ntp true" in out


def test_unreachable_broker(monkeypatch, populated, capsys) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("APCA_API_KEY_ID", "PK" "AAAAAAAAAAAAAAAAAA")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "secret-secret")
    monkeypatch.setenv("AUTOTRADER_ALPACA_TRADING_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AUTOTRADER_DATA_DIR", str(populated))
    rc, out = run(capsys)
    assert rc == 1
    broker_line = next(line for line in out.splitlines() if "  broker " in line)
    assert "FAIL" in broker_line and "cannot reach" in broker_line
