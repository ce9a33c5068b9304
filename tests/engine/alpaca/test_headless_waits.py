"""The headless service never crash-loops: an unreachable broker or refused keys at start are a
state it shows with what to do, retrying with backoff, and trading starts when it clears.

Real processes (``python -m app.cli run --headless``) against a closed loopback port and the
loopback emulator (which refuses reads with 403 until the test clears the fault).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.fakes.alpaca_emulator import AlpacaEmulator
from tests.waiting import wait_until

ROOT = Path(__file__).parents[3]


def _env(tmp_path: Path, url: str, stream: str, trade_stream: str, key: str, secret: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOTRADER_"))}
    env.update({
        "APCA_API_KEY_ID": key, "APCA_API_SECRET_KEY": secret,
        "AUTOTRADER_ALPACA_TRADING_URL": url, "AUTOTRADER_ALPACA_DATA_URL": url,
        "AUTOTRADER_ALPACA_STREAM_URL": stream, "AUTOTRADER_ALPACA_TRADE_STREAM_URL": trade_stream,
        "AUTOTRADER_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("DISPLAY", None)
    return env


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


class _Output:
    """Collects a process's output on a thread; ``until`` waits for a piece of text."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.text = ""
        self._t = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._t.start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.text += line

    def until(self, needle: str, timeout: float) -> str:
        try:
            wait_until(lambda: needle in self.text, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"{needle!r} not seen; output so far:\n{self.text}") from None
        return self.text

    def rest(self) -> str:
        self._t.join(timeout=10)
        return self.text


@pytest.mark.slow
def test_unreachable_broker_keeps_the_service_up_and_sigterm_ends_it_cleanly(tmp_path):
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(tmp_path, url, f"ws://127.0.0.1:{port}/s", f"ws://127.0.0.1:{port}/t",
               "PKTESTKEY" + "0123456789A", "x" * 40)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--mode", "paper",
                             "--headless"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = _Output(proc)
    try:
        out = output.until("WAITING: the broker at " + url + " cannot be reached", 60)
        assert "check the network connection" in out
        # Two retries later (2 s, then 4 s of backoff: the log's "try 3") it is still up, not
        # crash-looping. Waiting for that line, not a fixed sleep, proves the retries happened.
        output.until("(try 3)", 60)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        out = output.rest()
        assert proc.returncode == 0, out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_refused_keys_are_shown_and_trading_starts_once_the_broker_accepts(tmp_path, calendar):
    with AlpacaEmulator(calendar=calendar) as emu:
        emu.faults.forbid_reads = "request is not authorized"
        env = _env(tmp_path, emu.url, emu.stream_url, emu.trade_stream_url, emu.key_id,
                   emu.secret_key)
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--mode", "paper",
                                 "--headless", "--minutes", "1.5"], cwd=ROOT, env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = _Output(proc)
        try:
            out = output.until("WAITING: the broker refused the API keys", 60)
            assert "APCA_API_KEY_ID" in out
            assert proc.poll() is None
            emu.faults.forbid_reads = ""
            output.until("trading starts", 60)
            output.until("AutoTrader PAPER", 30)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            out = output.rest()
            assert proc.returncode == 0, out
            assert emu.secret_key not in out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
