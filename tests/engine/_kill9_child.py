"""Child process of test_guard_kill9.py: trades three minutes on real SQLite files in the
folder given as argv[1], then pauses inside the fourth minute's tick (after its intents and
guard baselines are written, before its order leaves) so the parent can SIGKILL it there.

Minute 0: the account has $10 (set in the simulated broker's own table): A's buy is
refused -> 1 refusal and a 10-minute cool-down. The cash comes back; the broker now holds 7 BBB the algorithms never bought -> B is paused. Minute 1: C buys
5 AAA at $100. Minute 2: AAA at $110 (C's peak $5,050), C buys again: killed before sending.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.broker.simulated import SimulatedBroker  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.engine.facade import Engine  # noqa: E402
from app.engine.guards import RiskLimits  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from db.system import SystemStore  # noqa: E402
from tests.engine.conftest import PLUGINS, T0, put_bars  # noqa: E402

RISK = RiskLimits(reject_cooldown_minutes=10, max_rejections=3)


def build(folder: Path, clock: ManualClock) -> tuple[Engine, SystemStore, MarketStore]:
    cal = nyse()
    system = SystemStore(folder / "system.db")
    market = MarketStore(folder / "market.db", cal)
    broker = SimulatedBroker(system, market, clock, starting_cash=1e6, slippage_bps=0.0,
                             calendar=cal)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=None,
                    clock=clock, calendar=cal, plugin_dirs=[PLUGINS], risk=RISK)
    return engine, system, market


def loaded(engine: Engine, *ids: int) -> None:
    """Wait until the algorithms' plugin objects exist: on a loaded machine a worker can take
    longer to start than the tick waits, and the tick then skips the algorithm (as it should),
    which would shift every count this test checks by a minute."""
    deadline = time.monotonic() + 60
    while any(engine._algos[i].instance is None for i in ids):
        assert time.monotonic() < deadline, "plugins not loaded within 60 s"
        time.sleep(0.02)


def main(folder: Path) -> None:
    cal = nyse()
    clock = ManualClock(T0)
    engine, system, market = build(folder, clock)
    for t in ("AAA", "BBB"):
        put_bars(market, t, 100.0, datetime(2024, 6, 3, tzinfo=UTC), T0, cal)
    engine.start()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    b = engine.create_algorithm("scripted", "BBB", 5000, {"action": "buy", "shares": 5})
    loaded(engine, a, b)
    system.conn.execute("UPDATE sim_account SET cash = 10")
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    system.conn.execute("UPDATE sim_account SET cash = 1000000")
    system.conn.execute("INSERT INTO sim_positions (ticker, qty) VALUES ('BBB', 7)")
    assert engine.watch_positions(T0) == [b]
    c = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    loaded(engine, c)
    clock.set(T0 + timedelta(minutes=1, seconds=2))
    engine.run_tick(T0 + timedelta(minutes=1))
    put_bars(market, "AAA", 110.0, T0, T0 + timedelta(minutes=3), cal)
    print(f"IDS {a} {b} {c}", flush=True)
    os.environ["AUTOTRADER_TEST_PAUSE_AT"] = "before_submit"
    os.environ["AUTOTRADER_TEST_PAUSE_SECONDS"] = "60"
    clock.set(T0 + timedelta(minutes=2, seconds=2))
    engine.run_tick(T0 + timedelta(minutes=2))  # pauses before its order leaves: killed
    print("NOT KILLED", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
