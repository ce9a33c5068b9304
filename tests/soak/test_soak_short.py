"""The soak's short form: a few sessions with SIGKILLs and restarts, nothing lost or doubled.

bench/soak.py runs the engine in a child process (seed-style plugin, simulated broker on the
system DB, replayed demo market) and kills it with SIGKILL at random moments; the checks read
the DBs the real app wrote.
"""

from __future__ import annotations

import pytest

from bench.soak import describe, run

pytestmark = pytest.mark.slow  # runs in CI (make test); deselect with -m "not slow"


def test_three_sessions_with_kills_lose_and_double_nothing(tmp_path) -> None:
    r = run(tmp_path / "soak", days=3, kills=4, n_algos=20, n_tickers=15, seed=3, log=lambda *_: None)
    print(describe(r))
    assert r.kills == 4 and r.starts == 5
    assert r.ticks_run == r.ticks_expected == 3 * 390
    assert r.orders > 0 and r.fills > 0
    assert r.duplicate_intents == 0
    assert r.fills_recorded_twice == 0
    assert r.ledger_vs_broker == {}
    assert r.rss_end_mb - r.rss_warm_mb <= 5, describe(r)
    assert r.fds[1] <= r.fds[0] + 2 and r.threads[1] <= r.threads[0] + 1, describe(r)
