"""The window soak's short form: one paper session against the loopback Alpaca emulator with
the app's window up (offscreen, unlocked, on the dashboard, Detail's chart docked beside the
cards), its faults on a schedule and a SIGKILL with a restart; checked against the
emulator's books and the window's own figures.

bench/soak_window.py runs soak_paper's soak with the child started as the app starts
(``run_gui``: QApplication, MainWindow, EngineBuilder, worker thread, operations); only the
engine the builder builds (soak_paper's paper stack on a manual clock) and the scheduler the
window starts (the soak's minute loop) are the soak's. Nothing is mocked; nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import pytest

from bench.soak_window import describe, run

# Slow: ~30 s on an idle machine, a few minutes on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # deselect with -m "not slow"

# The app's operations take the day's snapshot after each session's last tick on a thread
# of their own ("ops-close", app/ops/operations.py); that thread ends with its DB
# connections open (one per DB), and a store closes them only when another thread next opens
# one (db/connection.py): at most these two, held from one close to the next.
OPS_CLOSE_CONNECTIONS = 2


def test_a_session_on_the_dashboard_with_faults_and_a_kill_loses_nothing(tmp_path) -> None:
    r = run(tmp_path / "soak", days=1, kills=1, n_algos=20, n_tickers=15, seed=5,
            log=lambda *_: None)
    text = describe(r)
    print(text)
    assert r.kills == 1 and r.starts == 2, text
    assert r.ticks_run == r.ticks_expected == 390, text
    assert r.faults["drop_market"] >= 15 and r.faults["drop_trade"] >= 5, text
    assert r.faults["429"] >= 5 and r.faults["503"] >= 5 and r.faults["late"] >= 20, text
    assert r.orders_sent > 0 and r.fills > 0, text
    assert r.duplicate_cids_at_broker == 0 and r.duplicate_intents == 0 and r.sent_late == 0, text
    assert r.fills_recorded_twice == 0 and r.shares_mismatch == {}, text
    assert r.ledger_vs_broker == {}, text
    assert r.missing_minutes == 0 and r.bars_differing == 0, text
    # The window: on the dashboard through the last life, every card, the docked chart fed
    # with the minutes' bars, the scene rendering.
    assert set(r.pages_seen) == {"dashboard"} and r.cards == (20, 20), text
    assert r.docked and r.chart_points[1] > r.chart_points[0], text
    assert r.chart_draws[1] > r.chart_draws[0] and r.frames[1] > r.frames[0], text
    # Memory, threads and fds flat over the last, uninterrupted stretch.
    assert r.rss_end_mb - r.rss_warm_mb <= 5, text
    assert r.threads[1] <= r.threads[0] + 1 and r.os_threads[1] <= r.os_threads[0] + 2, text
    assert r.fds_not_db[1] <= r.fds_not_db[0] + 2, text
    assert r.db_conns_ended <= OPS_CLOSE_CONNECTIONS, text
    # Every other check of soak_paper's and the window's passes (the two above stand for
    # soak_paper's "fds grew" and "DB connections of ended threads").
    assert [p for p in r.problems if not p.startswith("fds grew")
            and "DB connections of ended threads" not in p] == [], text
