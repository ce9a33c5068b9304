"""The loopback Alpaca emulator in a process of its own, for the benchmarks.

In the benchmark's own process the emulator (serving pages, pushing frames) and the app
(parsing, storing) take turns holding one GIL, so a figure and its floor measured there both
count the emulator's work and its waits (issue 15: the stream and backfill rows read 0.25-0.6x
their floors for that reason). Here the emulator runs in a child Python process
(tests/fakes/alpaca_emulator.py as it is) on a fixed clock, driven over its stdin/stdout by
one-line commands:

- ``subscribed N``: wait until one authed market session has N bar subscriptions; ``ok``;
- ``send PATH``: push every frame of the pickled list of JSON frames (bytes) at ``PATH`` on that
  session, as text frames; answers ``sent SECONDS``;
- ``pages``: how many ``/v2/stocks/bars`` requests it has answered;
- ``quit``.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class EmulatorProcess:
    """``with EmulatorProcess(now, tickers) as emu:`` ``emu.settings`` point the app at it."""

    def __init__(self, now: datetime, tickers: list[str] | tuple[str, ...] = ()) -> None:
        self.now, self.tickers = now, list(tickers)
        self.proc: subprocess.Popen[str] | None = None
        self.settings: dict[str, str] = {}

    def __enter__(self) -> EmulatorProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.emulator_process", self.now.isoformat(),
             ",".join(self.tickers)], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.settings = json.loads(self._read())
        return self

    def _read(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator process ended ({self.proc.wait()})")
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    @property
    def url(self) -> str:
        return self.settings["alpaca.data_url"]

    @property
    def headers(self) -> dict[str, str]:
        return {"APCA-API-KEY-ID": self.settings["alpaca.key_id"],
                "APCA-API-SECRET-KEY": self.settings["alpaca.secret_key"]}

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            self.ask("quit")
        except (OSError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def serve(now_iso: str, tickers: list[str]) -> None:
    from db.calendar import nyse
    from tests.fakes.alpaca_emulator import AlpacaEmulator

    now = datetime.fromisoformat(now_iso)
    emu = AlpacaEmulator(now=lambda: now, calendar=nyse()).start()
    for t in tickers:
        emu.add_asset(t)
    print(json.dumps(emu.setting_values()), flush=True)
    try:
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "quit":
                break
            if cmd == "subscribed":
                while not any(s.authed and len(s.bars) >= int(arg) for s in emu.market_sessions):
                    time.sleep(0.002)
                print("ok", flush=True)
            elif cmd == "send":
                frames = pickle.loads(Path(arg).read_bytes())
                session = next(s for s in emu.market_sessions if s.authed)
                t0 = time.perf_counter()
                for f in frames:
                    session.conn.send_text(f.decode())
                print(f"sent {time.perf_counter() - t0:.4f}", flush=True)
            elif cmd == "pages":
                print(sum(1 for r in emu.requests if r[1] == "/v2/stocks/bars"), flush=True)
            else:
                print(f"error unknown command {cmd!r}", flush=True)
    finally:
        emu.stop()


if __name__ == "__main__":
    serve(sys.argv[1], [t for t in sys.argv[2].split(",") if t] if len(sys.argv) > 2 else [])
