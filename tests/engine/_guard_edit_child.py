"""Child process of test_guard_edit.py: changes one risk limit on real SQLite files in the
folder argv[1] and is SIGKILLed by itself right after the change is written to the DB and
before the running guards use it or anyone is shown it (``_apply_limits``, the step after
the write). The parent then opens a new engine on the same files."""

from __future__ import annotations

import os
import signal
import sys
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
from tests.engine.conftest import PLUGINS, T0  # noqa: E402


def build(folder: Path, mode: str = "live", risk: RiskLimits | None = None) -> Engine:
    cal = nyse()
    clock = ManualClock(T0)
    system = SystemStore(folder / "system.db")
    market = MarketStore(folder / "market.db", cal)
    broker = SimulatedBroker(system, market, clock, starting_cash=1e6, calendar=cal)
    return Engine(mode=mode, system=system, market=market, broker=broker, feed=None,
                  clock=clock, calendar=cal, plugin_dirs=[PLUGINS], risk=risk)


def main(folder: Path) -> None:
    engine = build(folder)

    def killed(limits: RiskLimits) -> None:
        print("WRITTEN", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    engine._apply_limits = killed  # type: ignore[method-assign]
    engine.set_guard_limit("algo_max_drawdown_pct", "12.5", source="from the kill test")
    print("NOT KILLED", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
