import os
import sqlite3
import threading
from datetime import UTC, datetime

import pytest

import db
from db import StorageError
from db.market import MarketStore, to_row
from tests.waiting import wait_until


def ts(*a) -> int:
    return int(datetime(*a, tzinfo=UTC).timestamp())


OPEN = ts(2024, 1, 31, 14, 30)  # 09:30 ET


def rows(ticker, start, n, price=100.0):
    return [(ticker, start + 60 * i, price + i, price + i + 1, price + i - 1, price + i + 0.5, 100 + i)
            for i in range(n)]


def test_insert_and_last_n_before_strictly(market_store):
    assert market_store.insert_rows(rows("AAPL", OPEN, 60)) == 60
    got = market_store.last_n_bars("AAPL", 51, OPEN + 60 * 55)
    assert len(got) == 51
    assert got[0]["timestamp"] == "2024-01-31T14:34:00Z"
    assert got[-1]["timestamp"] == "2024-01-31T15:24:00Z"  # strictly before 15:25
    assert got[-1]["ohlcv"] == {"o": 154.0, "h": 155.0, "l": 153.0, "c": 154.5, "v": 154}
    assert [g["timestamp"] for g in got] == sorted(g["timestamp"] for g in got)


def test_last_n_bars_timestamps_over_years_and_days(market_store):
    """The seed timestamps are built from a per-day prefix and a minute suffix: every stored
    minute, across day, month, year and DST boundaries and far back in history, reads back
    as the same string strftime gives."""
    import time

    days = [ts(2001, 3, 9, 14, 30), ts(2023, 12, 29, 14, 30), ts(2024, 1, 2, 14, 30),
            ts(2024, 3, 8, 14, 30), ts(2024, 3, 11, 13, 30), ts(2024, 11, 1, 13, 30),
            ts(2024, 11, 4, 14, 30)]
    for start in days:
        market_store.insert_rows(rows("AAPL", start, 390))
    got = market_store.last_n_bars("AAPL", 390 * len(days), days[-1] + 390 * 60)
    assert len(got) == 390 * len(days)
    want = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * i))
            for start in days for i in range(390)]
    assert [g["timestamp"] for g in got] == want
    assert market_store.last_n_bars("AAPL", 0, days[-1]) == []
    with pytest.raises(ValueError, match="zero or more"):
        market_store.last_n_bars("AAPL", -1, days[-1])


def test_iso_z_matches_strftime_for_any_epoch_second():
    import random
    import time

    from db.timeutil import iso_z

    rnd = random.Random(5)
    for t in [0, 59, 60, 86_399, 86_400, -60, -1, 1_706_731_140, 1_706_731_141, 4_102_444_800,
              1.5e9 + 60.7] + [rnd.randint(-10**9, 4 * 10**9) for _ in range(20_000)]:
        assert iso_z(t) == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t))), t


def test_concurrent_writers_wait_for_each_other_instead_of_failing(market_store):
    """The stream's writer and the gap filler insert on two threads (two connections): each
    write waits for the other under the busy timeout. With a deferred BEGIN, a read before the
    write made ~40% of such inserts fail at once with "database is locked"."""
    errors: list[str] = []

    def writer(k: int) -> None:
        for i in range(150):
            try:
                market_store.insert_rows([(f"W{k}", OPEN + 60 * (i % 390), 1.0, 1.0, 1.0, 1.0, 1)])
            except Exception as e:  # noqa: BLE001 - counted and shown below
                errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [market_store.count(f"W{k}") for k in range(4)] == [150] * 4


def test_bars_outside_regular_session_are_not_stored(market_store):
    pre = rows("AAPL", OPEN - 60 * 30, 30)  # 09:00-09:29 ET
    post = rows("AAPL", ts(2024, 1, 31, 21, 0), 10)  # 16:00 ET onwards
    holiday = rows("AAPL", ts(2024, 12, 25, 15, 0), 5)
    assert market_store.insert_rows(pre + post + holiday + rows("AAPL", OPEN, 2)) == 2
    assert market_store.count("AAPL") == 2


def test_upsert_is_idempotent_and_late_correction_wins(market_store):
    market_store.insert_rows(rows("AAPL", OPEN, 5))
    market_store.insert_rows(rows("AAPL", OPEN, 5))
    assert market_store.count("AAPL") == 5
    corrected = [("AAPL", OPEN + 240, 1.0, 2.0, 0.5, 1.5, 9)]
    market_store.insert_rows(corrected)
    assert market_store.count("AAPL") == 5
    assert market_store.latest_price("AAPL") == 1.5


def test_invalid_bars_are_dropped(market_store):
    bad = [("AAPL", OPEN + 7, 1, 1, 1, 1, 1),  # not a whole minute
           ("AAPL", OPEN + 60, float("nan"), 1, 1, 1, 1),
           ("AAPL", OPEN + 120, -1, 1, 1, 1, 1)]
    assert market_store.insert_rows(bad) == 0


def test_latest_price_and_tickers_are_separate(market_store):
    market_store.insert_rows(rows("AAPL", OPEN, 3, 100) + rows("MSFT", OPEN, 4, 300))
    assert market_store.latest_price("AAPL") == 102.5
    assert market_store.latest_price("MSFT") == 303.5
    assert market_store.latest_price("NVDA") is None
    assert market_store.tickers() == ["AAPL", "MSFT"]


def test_seed_functions_shapes(market_store, system_store):
    db.use_provider(db.StoreProvider(system_store, market_store))
    n = db.insert_minute_data("AAPL", [
        {"timestamp": "2024-01-31T14:30:00Z", "ohlcv": {"o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10}},
        {"t": "2024-01-31T14:31:00Z", "o": 2, "h": 3, "l": 1.5, "c": 2.5, "v": 20, "n": 3, "vw": 2.2},
        {"timestamp": "2024-01-31T14:00:00Z", "ohlcv": {"o": 1, "h": 1, "l": 1, "c": 1, "v": 1}},
    ])
    assert n == 2
    got = db.get_data_for_algorithm("AAPL", "last_n_bars", n=51,
                                    before_timestamp=datetime(2024, 1, 31, 14, 31, tzinfo=UTC))
    assert got == [{"timestamp": "2024-01-31T14:30:00Z",
                    "ohlcv": {"o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10}}]
    assert db.get_latest_price("AAPL") == 2.5
    assert len(db.get_data_for_algorithm("AAPL", "last_n_bars", n=5,
                                         before_timestamp="2024-01-31T15:00:00Z")) == 2

    algo = system_store.add_algorithm("sma_crossover", "AAPL", 1000.0)
    system_store.add_transaction(algo, "AAPL", "buy", 3, 10.5, "2024-01-31T14:32:00Z")
    tx = db.get_transactions(algo)
    assert tx[0]["type"] == "buy" and tx[0]["shares"] == 3 and tx[0]["price"] == 10.5
    assert tx[0]["timestamp"] == "2024-01-31T14:32:00Z"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"request_type": "all_bars"}, "unknown request kind 'all_bars'"),
        ({"n": -1}, "n must be a whole number >= 0"),
        ({"n": 2.5}, "n must be a whole number >= 0"),
        ({"before_timestamp": datetime(2024, 1, 31, 15)}, "no timezone"),
        ({"before_timestamp": "yesterday"}, "not an ISO-8601 timestamp"),
        ({"ticker": "AA PL;"}, "not a ticker symbol"),
        ({"ticker": "aapl"}, "not a ticker symbol"),
    ],
)
def test_bad_requests_are_named(market_store, system_store, kwargs, message):
    db.use_provider(db.StoreProvider(system_store, market_store))
    args = {"ticker": "AAPL", "request_type": "last_n_bars", "n": 5,
            "before_timestamp": "2024-01-31T15:00:00Z"} | kwargs
    with pytest.raises(ValueError, match=message):
        db.get_data_for_algorithm(args.pop("ticker"), **args)


def test_to_row_shapes():
    r = to_row("AAPL", (datetime(2024, 1, 31, 14, 30, tzinfo=UTC), 1, 2, 0.5, 1.5, 7))
    assert r == ("AAPL", OPEN, 1.0, 2.0, 0.5, 1.5, 7)


def test_each_thread_gets_its_own_connection(market_store):
    market_store.insert_rows(rows("AAPL", OPEN, 10))
    seen, errors = [], []
    together = threading.Barrier(4)

    def reader():
        try:
            seen.append((id(market_store.conn), market_store.count("AAPL")))
            together.wait(5)  # all four alive at once: none can inherit another's connection
        except Exception as e:  # pragma: no cover - a failure is the assertion below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(c == 10 for _, c in seen)
    assert len({i for i, _ in seen} | {id(market_store.conn)}) == 5


def test_connections_of_ended_threads_are_closed(market_store):
    """A thread pool that churns (or a Qt thread entering Python afresh for each slot) must
    not leave a connection per thread behind: that was the window's memory leak."""
    market_store.insert_rows(rows("AAPL", OPEN, 3))
    tids = []
    most = 0
    for _ in range(50):
        t = threading.Thread(target=market_store.count, args=("AAPL",))
        t.start()
        t.join()
        tids.append(t.native_id)
        most = max(most, market_store.open_connections())
    # A joined thread's OS task can linger a moment (join returns when Python is done with it,
    # the kernel finishes the exit after): under load one or two connections wait for the next
    # open to be closed, never more piling up than that.
    assert most <= 5, most
    assert wait_until(lambda: not any(os.path.exists(f"/proc/self/task/{tid}") for tid in tids))
    t = threading.Thread(target=market_store.count, args=("AAPL",))
    t.start()
    t.join()  # its connection's opening closed all fifty
    assert market_store.open_connections() <= 2  # this test's own thread's and that one's


def test_locked_db_write_gives_clear_error(data_dir, calendar, monkeypatch):
    import db.connection as conn_mod

    monkeypatch.setattr(conn_mod, "BUSY_TIMEOUT_MS", 100)
    store = MarketStore(data_dir / "m.db", calendar)
    blocker = sqlite3.connect(data_dir / "m.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError, match="cannot write bars .*locked"):
            store.insert_rows(rows("AAPL", OPEN, 1))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.insert_rows(rows("AAPL", OPEN, 1)) == 1


def test_read_only_data_folder_is_a_clear_error(tmp_path, calendar):
    import os

    if os.geteuid() == 0:
        # root ignores directory permissions; a path under a regular file fails the same way.
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(StorageError, match="cannot create data folder"):
            MarketStore(blocker / "sub" / "market.db", calendar)
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StorageError):
        MarketStore(ro / "market.db", calendar)


def test_not_a_database_is_a_clear_error(tmp_path, calendar):
    p = tmp_path / "market.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="market.db"):
        MarketStore(p, calendar)
    assert p.read_bytes().startswith(b"this is not sqlite")  # nothing overwritten


def test_a_live_thread_python_forgot_keeps_its_connection(market_store):
    """Python 3.13 drops a Qt thread's dummy ``threading`` entry when the slot returns, though
    the thread lives on (seen with PySide6 6.8.2 on Debian 13). Its connection must survive
    another thread opening one: closing it under a running query segfaulted the window.
    Here a plain thread takes its own entry out of ``threading._active`` as 3.13 does, and
    keeps using the connection it holds, as a query in progress would."""
    import threading as th

    market_store.insert_rows(rows("AAPL", OPEN, 3))
    forgotten, go_on, done = th.Event(), th.Event(), []

    def worker() -> None:
        conn = market_store.conn  # this thread's connection
        conn.execute("SELECT 1")
        with th._active_limbo_lock:  # what Python 3.13 does for a foreign thread's state
            me = th._active.pop(th.get_ident())
        forgotten.set()
        go_on.wait(10)
        try:
            done.append(conn.execute("SELECT 1").fetchone()[0])
        except sqlite3.ProgrammingError as e:  # "Cannot operate on a closed database."
            done.append(str(e))
        with th._active_limbo_lock:
            th._active[th.get_ident()] = me

    t = th.Thread(target=worker)
    t.start()
    assert forgotten.wait(10)
    other = th.Thread(target=market_store.count, args=("AAPL",))  # opens one: cleans up
    other.start()
    other.join()
    go_on.set()
    t.join(10)
    assert done == [1]


def test_a_thread_given_a_dead_threads_ident_keeps_its_connection(market_store):
    """``threading.get_ident()`` is the pthread's address, and glibc gives it to the next
    thread as soon as one ends. A Qt worker that got a dead thread's ident used to inherit its
    entry, and the next thread to open a connection closed the worker's under a running query
    (the segfault in ``tests/ui/test_threads.py``). Here a raw ``_thread`` thread (unknown to
    ``threading``, as a Qt thread is) takes over an ended thread's ident and keeps querying
    while another thread opens a connection."""
    import _thread

    market_store.insert_rows(rows("AAPL", OPEN, 3))
    reused = 0
    for _ in range(20):
        ended = threading.Thread(target=market_store.count, args=("AAPL",))
        ended.start()
        ended.join()
        got, go_on, done = threading.Event(), threading.Event(), []
        seen: dict[str, int] = {}

        def worker(seen: dict[str, int], got: threading.Event, go_on: threading.Event,
                   done: list) -> None:
            seen["ident"] = _thread.get_ident()
            conn = market_store.conn
            got.set()
            go_on.wait(10)
            try:
                done.append(conn.execute("SELECT 1").fetchone()[0])
            except sqlite3.ProgrammingError as e:  # "Cannot operate on a closed database."
                done.append(str(e))

        _thread.start_new_thread(worker, (seen, got, go_on, done))
        assert got.wait(10)
        other = threading.Thread(target=market_store.count, args=("AAPL",))  # cleans up
        other.start()
        other.join()
        go_on.set()
        wait_until(done.copy, timeout=10)
        assert done == [1]
        reused += seen["ident"] == ended.ident
    if not reused:
        pytest.skip("this C library never handed an ended thread's ident to a new thread")
