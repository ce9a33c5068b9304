"""`autotrader run --mode paper --headless` as a user runs it, pointed at the emulator by the
documented environment variables (README, "Manual run against the loopback emulator")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.alpaca_emulator import AlpacaEmulator

ROOT = Path(__file__).parents[3]


@pytest.mark.slow
def test_headless_paper_run_against_the_emulator(tmp_path: Path, calendar) -> None:
    with AlpacaEmulator(calendar=calendar) as emu:  # wall clock, like a manual run
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOTRADER_"))}
        env.update({
            "APCA_API_KEY_ID": emu.key_id, "APCA_API_SECRET_KEY": emu.secret_key,
            "AUTOTRADER_ALPACA_TRADING_URL": emu.url, "AUTOTRADER_ALPACA_DATA_URL": emu.url,
            "AUTOTRADER_ALPACA_STREAM_URL": emu.stream_url,
            "AUTOTRADER_ALPACA_TRADE_STREAM_URL": emu.trade_stream_url,
            "AUTOTRADER_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path),
        })
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "run", "--mode", "paper", "--headless",
             "--minutes", "0.02"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "PAPER" in out and "alpaca-paper" in out
        assert "paper trading at " + emu.url in out
        assert emu.secret_key not in out
        assert ("GET", "/v2/account") in emu.requests
