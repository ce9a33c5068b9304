"""The headless demo as a user runs it: a real process, real signals, a real SIGKILL.

Each test runs ``python main.py run --headless`` in its own data folder with a fast simulated
clock on a fixed demo date, so the synthetic market (seed 42) is the same every run.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.control.conftest import env_for as child_env
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return child_env(tmp_path, data="data", **extra)


def start(tmp_path: Path, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "main.py", "run", "--headless", *args], cwd=ROOT,
        env=env_for(tmp_path, **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def lines_of(stream) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            q.put(line)
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def wait_for(q: queue.Queue, text: str, timeout: float = 30) -> list[str]:
    """The lines read until one containing ``text`` (the process's output ended or
    ``timeout`` s without it: AssertionError with the last lines)."""
    seen: list[str] = []
    ended = False

    def found() -> bool:
        nonlocal ended
        while True:
            try:
                line = q.get_nowait()
            except queue.Empty:
                return False
            ended = line is None
            if ended:
                return True
            seen.append(line)
            if text in line:
                return True

    try:
        wait_until(found, timeout=timeout, interval=0.02)
    except AssertionError:
        ended = False
    if ended or not seen or text not in seen[-1]:
        why = "before the output ended" if ended else f"within {timeout:g} s"
        raise AssertionError(f"{text!r} not seen {why}; got:\n{''.join(seen[-30:])}")
    return seen


def run(tmp_path: Path, *args: str, timeout: float = 60, **extra: str):
    p = subprocess.run([sys.executable, "main.py", "run", "--headless", *args], cwd=ROOT,
                       env=env_for(tmp_path, **extra), capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "data" / "system.db")


def assert_books_agree(conn: sqlite3.Connection) -> None:
    """No order placed twice, and the ledger's positions equal the broker's."""
    sim = [r[0] for r in conn.execute("SELECT client_order_id FROM sim_orders")]
    ours = {r[0]: r[1] for r in conn.execute("SELECT client_order_id, status FROM orders")}
    assert len(sim) == len(set(sim))
    assert set(sim) <= set(ours)  # the broker saw nothing we did not intend
    for coid, status in ours.items():
        if status in ("intent", "submitted"):
            raise AssertionError(f"order {coid} left unreconciled")
    fills = [r[0] for r in conn.execute("SELECT fill_id FROM transactions")]
    assert len(fills) == len(set(fills))
    ledger = dict(conn.execute(
        "SELECT ticker, SUM(CASE type WHEN 'buy' THEN shares ELSE -shares END) "
        "FROM transactions GROUP BY ticker HAVING SUM(CASE type WHEN 'buy' THEN shares "
        "ELSE -shares END) != 0"))
    broker = dict(conn.execute("SELECT ticker, qty FROM sim_positions WHERE qty != 0"))
    assert ledger == broker


def test_first_demo_start_trades_at_once_and_a_restart_resumes(tmp_path: Path):
    p = run(tmp_path, "--minutes", "20", "--speed", "600")
    out = p.stdout
    assert "SIMULATED MONEY" in out
    for t in ("AAPL", "MSFT", "NVDA"):
        assert f"Demo SMA {t}" in out
    ticks = [ln for ln in out.splitlines() if ln.startswith("[2024-06-04 ")]
    assert ticks[0].startswith("[2024-06-04 09:30 ET]")  # decisions from the first minute
    assert " BUY " in ticks[0] or " BUY " in ticks[1]
    assert "fill:" in out
    log = (tmp_path / "log" / "autotrader.log").read_text()
    assert "first demo start: created 3 demo algorithms" in log
    last = ticks[-1][1:17]

    p2 = run(tmp_path, "--minutes", "3", "--speed", "600")
    ticks2 = [ln for ln in p2.stdout.splitlines() if ln.startswith("[2024-06-04 ")]
    assert ticks2, p2.stdout
    assert ticks2[0][1:17] > last  # resumes after the last minute run, never repeats one
    conn = db(tmp_path)
    assert conn.execute("SELECT count(*) FROM algorithms").fetchone()[0] == 3
    assert_books_agree(conn)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_tick_and_exits_cleanly(tmp_path: Path, sig: int):
    proc = start(tmp_path, "--speed", "60")
    out = lines_of(proc.stdout)
    try:
        wait_for(out, "[2024-06-04 09:3")
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = []
    while (line := out.get(timeout=5)) is not None:
        rest.append(line)
    assert any("P&L" in ln for ln in rest)  # the closing summary was printed
    assert_books_agree(db(tmp_path))


@pytest.mark.parametrize("point", ["after_broker_fill", "before_submit"])
def test_sigkill_in_the_order_path_then_restart(tmp_path: Path, point: str):
    proc = start(tmp_path, "--minutes", "30", "--speed", "600",
                 AUTOTRADER_TEST_PAUSE_AT=point, AUTOTRADER_TEST_PAUSE_SECONDS="60")
    err = lines_of(proc.stderr)
    lines_of(proc.stdout)
    try:
        wait_for(err, f"PAUSE {point}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    conn = db(tmp_path)
    # The tick's intents are all written before the first is sent; the first is in flight.
    intents = [r[0] for r in conn.execute(
        "SELECT client_order_id FROM orders WHERE status = 'intent' ORDER BY id")]
    assert intents
    coid = intents[0]
    assert conn.execute("SELECT count(*) FROM transactions WHERE fill_id LIKE ?",
                        (coid + ":%",)).fetchone()[0] == 0
    at_broker = conn.execute("SELECT status FROM sim_orders WHERE client_order_id = ?",
                             (coid,)).fetchall()
    assert at_broker == ([("filled",)] if point == "after_broker_fill" else [])
    conn.close()

    run(tmp_path, "--minutes", "5", "--speed", "600")
    conn = db(tmp_path)
    status, reason = conn.execute("SELECT status, reason FROM orders WHERE client_order_id = ?",
                                  (coid,)).fetchone()
    fills = conn.execute("SELECT count(*) FROM transactions WHERE fill_id LIKE ?",
                         (coid + ":%",)).fetchone()[0]
    if point == "after_broker_fill":
        assert status == "filled" and fills == 1  # recorded once, from the broker's state
    else:
        assert status == "canceled" and "never reached the broker" in reason and fills == 0
    for other in intents[1:]:  # never sent: canceled, not sent late for a past minute
        assert conn.execute("SELECT status FROM orders WHERE client_order_id = ?",
                            (other,)).fetchone() == ("canceled",)
        assert conn.execute("SELECT count(*) FROM sim_orders WHERE client_order_id = ?",
                            (other,)).fetchone() == (0,)
    assert_books_agree(conn)


def test_a_second_instance_on_the_same_data_folder_refuses_to_start(tmp_path: Path):
    first = start(tmp_path, "--speed", "60")
    out = lines_of(first.stdout)
    try:
        wait_for(out, "[2024-06-04 09:30")
        second = subprocess.run(
            [sys.executable, "main.py", "run", "--headless", "--minutes", "1"], cwd=ROOT,
            env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"another AutoTrader (pid {first.pid}) is running" in second.stderr
        assert first.poll() is None  # the first one is undisturbed
    finally:
        first.terminate()
        first.wait(timeout=15)
    run(tmp_path, "--minutes", "1", "--speed", "600")  # the lock went with the process
