"""The paper soak's short form: one session against the loopback Alpaca emulator with its
faults on a schedule (stream drops, trade-stream drops, 429 and 503 bursts, late bars with
their corrections) and SIGKILLs with restarts; checked against the emulator's own books.

bench/soak_paper.py runs the app's real paper stack (alpaca-py's TradingClient, the
websocket-client streams, the gap filler, the engine with plugin worker processes) in a child
process; nothing is mocked and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import pytest

from bench.soak_paper import describe, run

# Slow: ~50 s on an idle machine, past 120 s (the default limit) on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]  # deselect with -m "not slow"


def test_a_paper_session_with_faults_and_kills_loses_and_doubles_nothing(tmp_path) -> None:
    r = run(tmp_path / "soak", days=1, kills=3, n_algos=20, n_tickers=15, seed=5,
            log=lambda *_: None)
    text = describe(r)
    print(text)
    assert r.kills == 3 and r.starts == 4, text
    assert r.ticks_run == r.ticks_expected == 390, text
    assert r.faults["drop_market"] >= 15 and r.faults["drop_trade"] >= 5, text
    assert r.faults["429"] >= 5 and r.faults["503"] >= 5 and r.faults["late"] >= 20, text
    assert r.orders_sent > 0 and r.fills > 0, text
    assert r.duplicate_cids_at_broker == 0 and r.duplicate_intents == 0 and r.sent_late == 0, text
    assert r.fills_recorded_twice == 0 and r.shares_mismatch == {}, text
    assert r.ledger_vs_broker == {}, text
    assert r.missing_minutes == 0 and r.bars_differing == 0, text
    assert r.rss_end_mb - r.rss_warm_mb <= 5, text
    # A live long-lived thread's first DB write (the order poll's) opens its connection at any
    # moment of the run: counted apart (fds_beside_db); no ended thread's connection stays.
    a, b = r.fds_beside_db
    assert b <= a + 2 and r.threads[1] <= r.threads[0] + 1, text
    assert r.db_conns_ended == 0, text
    assert r.problems == [], text
