"""Storage faults, stale orders and plugins that come back (issue 17), with real parts: real
SQLite files, a second process holding the write lock, a real small filesystem (a tmpfs
mounted for the test when we are root; else a simulated ENOSPC, said in the skip/test)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.engine.storage import DeferredWrites, DiskWatch, OnceNotice, classify
from db.connection import BUSY_TIMEOUT_MS
from tests.waiting import nothing_before, wait_until

from .conftest import PLUGINS, T0, fill_disk

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO settings (key, value) VALUES ('holder', 'x') "
             "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the system DB's write lock for ``seconds``."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def connection_busy_timeout(store) -> int:
    return int(store.conn.execute("PRAGMA busy_timeout").fetchone()[0])


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_write_lock_held_7s_by_another_process_is_retried_within_the_tick(
        make_engine, system_store, caplog):
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 3})
    holder = _hold_lock(Path(system_store.path), 7.0)
    try:
        r = engine.run_tick(T0)
    finally:
        holder.wait(timeout=30)
    # The busy timeout (5 s) ran out once; the tick tried again and recorded its decisions.
    assert r.errors == {}
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, 3)]
    assert engine.algorithm_view(a).position == 3
    assert engine.storage_problem is None
    assert any("locked by another process" in m for m in caplog.messages)
    assert system_store.get_setting("holder") == "x"  # the other process's write stands too


def test_decisions_not_recorded_send_nothing_and_are_reported_once(
        make_engine, system_store, monkeypatch, caplog):
    import app.engine.tick as tick

    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    # Shorter waits than production so the test takes seconds: the tick's budget and this
    # thread's busy timeout (the tick runs on the test's thread, so on this connection).
    monkeypatch.setattr(tick, "TICK_BUDGET_SECONDS", 0.5)
    system_store.conn.execute("PRAGMA busy_timeout = 200")
    holder = _hold_lock(Path(system_store.path), 6.0)
    caplog.set_level(logging.INFO)
    try:
        results = [engine.run_tick(T0 + timedelta(minutes=i)) for i in range(3)]
    finally:
        holder.wait(timeout=30)
    for r in results:
        assert r.fills == []
        assert "not recorded, not sent" in r.errors[a]
    assert system_store.orders_for(a) == []  # nothing written, nothing sent
    locked = [m for m in _errors(caplog) if "stayed locked" in m]
    assert len(locked) == 1, _errors(caplog)  # said once, not once a minute
    assert not any(r.exc_info for r in caplog.records)  # and no traceback
    assert "stayed locked" in engine.account_summary()["storage"]

    system_store.conn.execute("PRAGMA busy_timeout = 5000")
    r = engine.run_tick(T0 + timedelta(minutes=3))
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, 1)]
    assert engine.storage_problem is None and engine.account_summary()["storage"] is None
    assert any("storage works again" in m for m in caplog.messages)


# --- a full disk ---------------------------------------------------------------------------
def _fill_sqlite(system) -> None:
    """Fill what SQLite keeps for itself too (the WAL may reuse its frames)."""
    for _ in range(200):
        try:
            system.set_setting("pad", "x" * 65536)
        except Exception:  # noqa: BLE001 - the disk is full: what we wanted
            break


@pytest.fixture
def small_fs_engine(small_fs, calendar):
    """A started demo engine whose DBs are on the small filesystem, with bars for AAA up to
    T0; no free-space floor, so a pause must come from a failed write itself. Yields
    (engine, system, broker, clock)."""
    from datetime import UTC, datetime

    from app.broker.simulated import SimulatedBroker
    from app.clock import ManualClock
    from app.engine.facade import Engine
    from db.market import MarketStore
    from db.system import SystemStore

    from .conftest import put_bars

    system = SystemStore(small_fs / "system.db")
    market = MarketStore(small_fs / "market.db", calendar)
    put_bars(market, "AAA", 100.0, datetime(2024, 6, 4, 13, 30, tzinfo=UTC), T0, calendar)
    clock = ManualClock(T0)
    broker = SimulatedBroker(system, market, clock, starting_cash=100_000, calendar=calendar)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=None,
                    clock=clock, calendar=calendar, plugin_dirs=[PLUGINS],
                    plugin_timeout=10.0)  # cold plugin workers on a loaded machine
    engine.disk = DiskWatch(small_fs, warn_bytes=1024 * 1024, pause_bytes=0)
    try:
        engine.start()
        yield engine, system, broker, clock
    finally:
        engine.close()
        system.close()
        market.close()


def test_disk_filling_mid_run_pauses_trading_once_and_resumes_when_space_is_back(
        small_fs_engine, small_fs, caplog):
    engine, _, _, clock = small_fs_engine
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    assert engine.run_tick(T0).fills  # trades while there is room
    filler = fill_disk(small_fs)
    caplog.set_level(logging.INFO)
    minutes = [T0 + timedelta(minutes=i) for i in range(1, 8)]
    results = []
    for m in minutes[:5]:
        clock.set(m)
        results.append(engine.run_tick(m))
    assert all(not r.fills for r in results)
    assert engine.algorithm_view(a).position == 1  # nothing more bought
    problem = engine.account_summary()["storage"]
    assert problem and "full" in problem and "free some space" in problem
    assert engine.status_problem == problem
    full = [m for m in _errors(caplog) if "full" in m]
    assert len(full) == 1, _errors(caplog)  # one clear error, not one a minute
    assert not any(r.exc_info for r in caplog.records)

    filler.unlink()
    clock.set(minutes[5])
    r = engine.run_tick(minutes[5])
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, 1)]
    assert engine.storage_problem is None
    assert engine.algorithm_view(a).position == 2


def test_full_disk_simulated_by_the_free_space_check(make_engine, system_store, caplog):
    """The free-space floor without filling a disk: ``shutil.disk_usage`` is replaced by a
    function reporting the free bytes we set (simulated; the tmpfs test above is the real
    one)."""
    from types import SimpleNamespace

    free = {"bytes": 10 * 1024 * 1024}
    engine = make_engine()
    engine.disk = DiskWatch(Path(system_store.path).parent, warn_bytes=5_000_000,
                            pause_bytes=1_000_000, every=0.0,
                            usage=lambda _p: SimpleNamespace(free=free["bytes"]))
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    caplog.set_level(logging.INFO)
    assert engine.run_tick(T0).fills
    free["bytes"] = 3_000_000
    assert engine.run_tick(T0 + timedelta(minutes=1)).fills
    assert any("low disk space" in m for m in caplog.messages)
    free["bytes"] = 500_000
    for i in (2, 3, 4):
        r = engine.run_tick(T0 + timedelta(minutes=i))
        assert not r.fills and "the disk holding" in r.errors[a]
    assert len([m for m in _errors(caplog) if "full" in m]) == 1
    assert "trading is paused" in engine.account_summary()["halted"]
    free["bytes"] = 2_000_000
    assert engine.run_tick(T0 + timedelta(minutes=5)).fills
    assert engine.account_summary()["storage"] is None


def test_classify_and_once_notice():
    import errno
    import sqlite3

    assert classify(sqlite3.OperationalError("database is locked")) == "locked"
    assert classify(sqlite3.OperationalError("database or disk is full")) == "full"
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert classify(ValueError("x")) is None
    said = []
    n = OnceNotice(logging.getLogger("t"))
    n.log = type("L", (), {"error": lambda self, *a: said.append(a),
                           "debug": lambda self, *a: None,
                           "warning": lambda self, *a: said.append(a)})()
    assert n.problem("full", "x") and not n.problem("full", "x") and n.problem("locked", "y")
    assert not n.problem("full", "x")
    n.clear("ok")
    assert len(said) == 3


# --- stale orders --------------------------------------------------------------------------
def test_an_order_older_than_30s_of_market_time_is_cancelled_not_sent(make_engine, clock,
                                                                      system_store):
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 2})
    clock.set(T0 + timedelta(seconds=31))  # the tick of T0 reached the send step 31 s late
    r = engine.run_tick(T0)
    assert r.fills == []
    assert "cancelled as stale, not sent" in r.errors[a] and "limit 30 s" in r.errors[a]
    row = system_store.orders_for(a)[0]
    assert row["status"] == "canceled" and "stale" in row["reason"]
    assert "stale" in engine.algorithm_view(a).error  # shown on the card
    assert engine.algorithm_view(a).position == 0
    assert engine.broker.get_order(row["client_order_id"]) is None  # never reached it

    m = T0 + timedelta(minutes=1)
    clock.set(m + timedelta(seconds=29))
    r = engine.run_tick(m)
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, 2)]


def test_the_stale_limit_is_configurable(make_engine, clock):
    engine = make_engine()
    engine.stale_after = timedelta(seconds=5)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    clock.set(T0 + timedelta(seconds=6))
    assert "limit 5 s" in engine.run_tick(T0).errors[a]


# --- a plugin folder that comes back -------------------------------------------------------
def test_algorithm_left_in_error_by_a_missing_plugin_folder_runs_when_it_is_back(
        make_engine, tmp_path, system_store, caplog):
    folder = tmp_path / "myplugins"
    folder.mkdir()
    shutil.copy(PLUGINS / "scripted.py", folder / "mine.py")
    engine = make_engine(plugin_dirs=[folder])
    a = engine.create_algorithm("mine", "AAA", 5000, {"action": "buy", "shares": 1})
    assert engine.run_tick(T0).fills
    engine.close()

    away = tmp_path / "elsewhere"
    folder.rename(away)  # the folder is gone at the next start (an unmounted USB stick)
    engine = make_engine(plugin_dirs=[folder])
    view = engine.algorithm_view(a)
    assert view.status == "error" and "not found" in view.error
    r = engine.run_tick(T0 + timedelta(minutes=1))
    assert not r.fills
    away.rename(folder)  # it is back
    r = engine.run_tick(T0 + timedelta(minutes=2))  # the next tick runs the algorithm
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, 1)]
    assert engine.algorithm_view(a).status == "running"
    assert engine.algorithm_view(a).error is None
    assert system_store.get_algorithm(a)["status"] == "running"
    assert any("is back" in m for m in caplog.messages)


def test_demo_clock_stands_still_while_a_slow_tick_runs():
    """The scheduler holds a simulated clock at each tick's wake time until the tick is
    done: at x60 a tick of 0.3 s would see 18 simulated seconds go by, yet every tick sees
    its own minute + 2 s from start to end (the engine is a recorder: the real one is covered
    by the demo tests; this is the clock/scheduler contract). The clock starts 2 simulated
    minutes before the first wake (2 s real): a barrier is refused once the clock is past
    it, and the scheduler's first computations took over 1 s on their own (x600 gave it
    3 ms)."""
    import threading

    from app.clock import SimulatedClock
    from app.engine.scheduler import Scheduler
    from db.calendar import nyse

    cal = nyse()  # loaded before the clock starts (its first load takes ~1 s)
    clock = SimulatedClock(T0 - timedelta(minutes=2), speed=60)
    seen: list[tuple] = []

    class SlowEngine:
        last_minute = None

        def run_tick(self, minute):
            t0 = clock.now()
            time.sleep(0.3)
            seen.append((minute, t0, clock.now()))
            return type("R", (), {"latency_ms": 300.0})()

    sched = Scheduler(SlowEngine(), clock, cal, offset_seconds=2.0)
    sched.last_minute = T0 - timedelta(minutes=1)
    sched.max_ticks = 3
    stop = threading.Event()
    started = time.monotonic()
    sched.run(stop)
    assert sched.ticks == 3
    assert [m for m, _, _ in seen] == [T0 + timedelta(minutes=i) for i in range(3)]
    for m, t_start, t_end in seen:
        assert t_start == t_end == m + timedelta(seconds=2)
    assert clock.stalled >= 3 * 0.25
    assert time.monotonic() - started >= 0.9  # the clock waited for the ticks


def test_log_file_on_a_full_disk_is_said_once_not_a_traceback_per_line(small_fs, capsys):
    from app.logging_setup import PrivateRotatingFileHandler

    h = PrivateRotatingFileHandler(small_fs / "autotrader.log", maxBytes=10**9, backupCount=1)
    log = logging.getLogger("fulltest")
    log.addHandler(h)
    log.propagate = False
    try:
        filler = fill_disk(small_fs)
        for i in range(200):
            log.error("line %d %s", i, "x" * 2000)
        err = capsys.readouterr().err
        assert err.count("cannot write the log file") == 1 and "Traceback" not in err
        filler.unlink()
        log.error("back")
        assert "is written again" in capsys.readouterr().err
    finally:
        log.removeHandler(h)
        h.close()


def test_stop_all_while_another_process_holds_the_lock_stops_every_algorithm(
        make_engine, system_store, caplog):
    """The panic button with someone's sqlite3 shell holding the write lock: every algorithm
    stops at once (it used to stop the first one and raise "database is locked", the others
    trading on); the status rows are written once the lock is released."""
    from app.engine.facade import EngineError

    engine = make_engine()
    ids = [engine.create_algorithm("scripted", t, 5000, {"action": "buy", "shares": 1})
           for t in ("AAA", "BBB", "AAA")]
    assert len(engine.run_tick(T0).fills) == 3
    holder = _hold_lock(Path(system_store.path), 4.0)
    try:
        t0 = time.monotonic()
        engine.stop_all()
        # Not the 5 s busy timeout (it was waited out twice: 10 s before "all stopped").
        assert time.monotonic() - t0 < 2.0
        assert connection_busy_timeout(system_store) == BUSY_TIMEOUT_MS  # restored
        assert all(engine.algorithm_view(a).status == "stopped" for a in ids)
        with pytest.raises(EngineError, match="not sold: the database is locked"):
            engine.stop_algorithm(ids[0], liquidate=True)  # no sale without its intent row
        assert holder.poll() is None  # all this while the lock was held
        assert [r["status"] for r in system_store.list_algorithms()] == ["running"] * 3
    finally:
        holder.wait(timeout=30)
    wait_until(lambda: all(r["status"] == "stopped" for r in system_store.list_algorithms()),
               timeout=10, what="the held-back stop rows written once the lock went")
    assert system_store.orders_for(ids[0])[-1]["reason"] != "liquidation on stop"
    assert engine.run_tick(T0 + timedelta(minutes=1)).fills == []
    errors = [m for m in _errors(caplog) if "locked by another process" in m]
    assert len(errors) == 1 and "saved as soon as the lock is released" in errors[0]
    # said just after the last row is written
    wait_until(lambda: any("waiting writes are saved" in m for m in caplog.messages))


def test_classify_reads_storage_errors_from_opening_a_db():
    from db.connection import StorageError

    assert classify(StorageError("cannot create database /d/system.db: No space left on "
                                 "device")) == "full"
    assert classify(StorageError("cannot open database /d/system.db: database is locked")) \
        == "locked"
    assert classify(StorageError("/d/system.db is not a usable SQLite database: file is not "
                                 "a database")) is None


def test_stop_all_on_a_full_disk_stops_every_algorithm_and_saves_when_space_is_back(
        small_fs_engine, small_fs, caplog):
    """A real full filesystem: the status writes of stop all fail (SQLITE_FULL); every
    algorithm stops at once all the same, and the rows are written once there is room."""
    from app.engine.facade import EngineError

    engine, system, broker, _ = small_fs_engine
    ids = [engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
           for _ in range(3)]
    assert len(engine.run_tick(T0).fills) == 3
    filler = fill_disk(small_fs)
    _fill_sqlite(system)
    with pytest.raises(EngineError, match="not sold"):  # no sale without its intent row
        engine.stop_all(liquidate=True)
    assert [engine.algorithm_view(a).status for a in ids] == ["stopped"] * 3
    assert broker.get_positions().get("AAA") == 3  # nothing was sold unrecorded
    rows = {r["id"]: r["status"] for r in system.list_algorithms()}
    assert any(rows[a] == "running" for a in ids)  # not all could be written yet
    filler.unlink()
    wait_until(lambda: all(r["status"] == "stopped" for r in system.list_algorithms()),
               timeout=10, what="the held-back stop rows written once there was room")
    assert any("disk is full" in m and "not saved yet" in m for m in _errors(caplog))


def test_a_resume_after_a_held_back_stop_is_not_undone_by_it(make_engine, system_store):
    """Stop while another process holds the lock (its row waits), then resume: when the lock
    goes, the waiting stop row must not overwrite the algorithm's running state."""
    import sqlite3

    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    writes = DeferredWrites.of(system_store)
    system_store.conn.execute("PRAGMA busy_timeout = 300")
    holder = _hold_lock(Path(system_store.path), 3.0)
    try:
        engine.stop_algorithm(a)
        assert engine.algorithm_view(a).status == "stopped"
        try:
            engine.resume_algorithm(a)  # its own row cannot be written either: it says so
        except sqlite3.OperationalError:
            pass
        assert engine.algorithm_view(a).status == "running"
        assert writes.pending  # the stop's row waits for the lock
    finally:
        holder.wait(timeout=30)
    # The marker: the waiting writes tried again (every 2 s) and all written.
    nothing_before(lambda: not writes.pending,
                   lambda: engine.algorithm_view(a).status != "running",
                   what="the resumed algorithm stopped by the held-back stop row")
    assert system_store.get_algorithm(a)["status"] == "running"


# --- create, resume, delete under a foreign lock; held-back rows survive kill -9 ------------
def test_create_under_a_lock_longer_than_the_busy_timeout_succeeds_once_it_goes(
        make_engine, system_store):
    """Someone's sqlite3 shell holds the write lock past this connection's busy timeout: the
    create keeps trying (the core lock let go in between) and succeeds once the lock goes."""
    engine = make_engine()
    system_store.conn.execute("PRAGMA busy_timeout = 300")  # this thread's wait, shortened
    holder = _hold_lock(Path(system_store.path), 2.0)
    try:
        a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
        assert holder.poll() is not None or holder.wait(timeout=30) == 0
    finally:
        holder.wait(timeout=30)
    assert system_store.get_algorithm(a)["status"] == "running"
    assert engine.algorithm_view(a).status == "running"
    assert [(f["algo_id"], f["shares"]) for f in engine.run_tick(T0).fills] == [(a, 1)]


def test_create_under_a_lock_that_stays_is_refused_clearly_and_takes_nothing(
        make_engine, system_store, monkeypatch):
    import app.engine.lifecycle as lifecycle
    from app.engine.facade import EngineError

    engine = make_engine()
    free = engine.free_capital()
    monkeypatch.setattr(lifecycle, "CREATE_WAIT", 1.0)
    system_store.conn.execute("PRAGMA busy_timeout = 300")
    holder = _hold_lock(Path(system_store.path), 6.0)
    try:
        with pytest.raises(EngineError) as e:
            engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
        msg = str(e.value)
        assert msg.startswith("not created: the database is locked by another process")
        assert "close the other program" in msg and "nothing was changed" in msg
        assert holder.poll() is None  # refused while the lock was still held
    finally:
        holder.wait(timeout=30)
    assert engine.algorithm_views() == [] and system_store.list_algorithms() == []
    assert engine.free_capital() == pytest.approx(free)  # no capital taken


def test_resume_and_delete_under_a_lock_take_effect_and_are_saved_when_it_goes(
        make_engine, system_store, caplog):
    engine = make_engine()
    a, b = (engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
            for _ in range(2))
    engine.stop_algorithm(a)
    journal = Path(str(system_store.path) + "-deferred.jsonl")
    system_store.conn.execute("PRAGMA busy_timeout = 300")
    holder = _hold_lock(Path(system_store.path), 3.0)
    try:
        engine.resume_algorithm(a)  # no raw "database is locked": it takes effect
        engine.delete_algorithm(b)
        assert engine.algorithm_view(a).status == "running"
        assert [v.id for v in engine.algorithm_views()] == [a]
        assert journal.exists()  # held back, on disk
        assert holder.poll() is None
        assert {r["id"]: r["status"] for r in system_store.list_algorithms()} == {
            a: "stopped", b: "running"}
    finally:
        holder.wait(timeout=30)
    wait_until(lambda: not journal.exists(), timeout=15)
    assert system_store.get_algorithm(a)["status"] == "running"
    assert system_store.get_algorithm(b)["status"] == "deleted"
    assert any("saved as soon as the lock is released" in m for m in _errors(caplog))


def test_held_back_rows_survive_kill_9_during_a_long_lock(tmp_path, calendar):
    """A real child process stops all, resumes one and deletes one while another process holds
    the write lock, then is killed with SIGKILL before the lock goes: the next start writes
    what it held back (from the journal beside the DB), in order."""
    import signal
    import sqlite3

    from tests.engine._kill9_child import ROOT

    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "engine" /
                                                  "_journal_child.py"), str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder = None
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        assert line.startswith("IDS "), line
        ids = [int(x) for x in line.split()[1:]]
        holder = _hold_lock(tmp_path / "system.db", 120.0)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["held", "stopped", "running"]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        if holder is not None:
            holder.kill()  # its transaction goes with it
            holder.wait(timeout=30)
    journal = tmp_path / "system.db-deferred.jsonl"
    assert len(journal.read_text().splitlines()) == 5  # 3 stops, a resume, a deletion
    with sqlite3.connect(tmp_path / "system.db") as conn:
        rows = dict(conn.execute("SELECT id, status FROM algorithms"))
    assert rows == dict.fromkeys(ids, "running")  # nothing of it reached the DB

    from app.clock import ManualClock
    from tests.engine._kill9_child import build

    engine, system, market = build(tmp_path, ManualClock(T0))
    try:
        assert {v.id: v.status for v in engine.algorithm_views()} == {
            ids[0]: "stopped", ids[1]: "running"}
        assert system.get_algorithm(ids[2])["status"] == "deleted"
        assert not journal.exists()
    finally:
        engine.close()
        system.close()
        market.close()


def test_a_journal_line_cut_short_by_a_kill_is_skipped(system_store):
    from app.engine.storage import replay_journal

    a = system_store.add_algorithm("scripted", "AAA", 100.0)
    journal = Path(str(system_store.path) + "-deferred.jsonl")
    journal.write_text(f'[["status",{a},"stopped","why"]]\n[["status",{a},"run')
    assert replay_journal(system_store) == 1
    row = system_store.get_algorithm(a)
    assert (row["status"], row["error"]) == ("stopped", "why")
    assert not journal.exists()


def test_a_garbled_journal_never_stops_the_start(system_store, caplog):
    """Lines a hand edit or a broken disk left: wrong shapes, unknown steps and statuses,
    binary junk. Each bad one is skipped with a line in the log; the good ones are written."""
    from app.engine.storage import replay_journal

    a = system_store.add_algorithm("scripted", "AAA", 100.0)
    journal = Path(str(system_store.path) + "-deferred.jsonl")
    journal.write_bytes(b'\x00\xff junk\n{"a": 1}\n[["status", 1]]\n[["drop", 1]]\n'
                        b'[["status", 1, "exploded", null]]\n[["status", null, "x", 1]]\n[]\n'
                        + f'[["status",{a},"stopped",null]]\n'.encode())
    assert replay_journal(system_store) == 6
    assert system_store.get_algorithm(a)["status"] == "stopped"
    assert not journal.exists()
    assert sum("skipped" in m for m in caplog.messages) >= 6


def test_an_unreadable_journal_is_kept_and_said(system_store, caplog):
    from app.engine.storage import replay_journal

    journal = Path(str(system_store.path) + "-deferred.jsonl")
    journal.mkdir()  # not a file
    assert replay_journal(system_store) == 0
    assert journal.exists()
    assert any("cannot read the held-back writes" in m for m in caplog.messages)


def test_create_on_a_full_disk_is_refused_clearly_and_takes_nothing(small_fs_engine, small_fs):
    """A real full filesystem: the new algorithm's row cannot be written; the create says so
    in one line (no raw SQLite message, no traceback) and nothing is taken or half made."""
    from app.engine.facade import EngineError

    engine, system, _, _ = small_fs_engine
    first = engine.create_algorithm("scripted", "AAA", 5000, {"action": "hold"})
    free = engine.free_capital()
    filler = fill_disk(small_fs)
    _fill_sqlite(system)
    with pytest.raises(EngineError) as e:
        engine.create_algorithm("scripted", "AAA", 5000, {"action": "hold"})
    assert str(e.value).startswith("not created: the disk is full"), e.value
    assert "nothing was changed" in str(e.value)
    assert [v.id for v in engine.algorithm_views()] == [first]
    assert engine.free_capital() == pytest.approx(free)
    filler.unlink()
    second = engine.create_algorithm("scripted", "AAA", 5000, {"action": "hold"})
    assert [r["id"] for r in system.list_algorithms()] == [first, second]
