"""The simulated broker behind a switch that stalls or fails every call: it stands in for a
network that does not answer (or answers 503) for minutes, which the in-process simulated
broker cannot do. Used by test_safety.py and bench/bench_stop.py (the same set-up in both)."""

from __future__ import annotations

import threading
import time
from typing import Any

from app.broker.base import BrokerError
from app.broker.simulated import SimulatedBroker


class StallingBroker(SimulatedBroker):
    """``stall``: every broker call waits until ``release`` is set (or ``stall_seconds``),
    then raises a retryable 503 if ``fail`` is set; ``submit_delay``: seconds each order
    takes to be sent. ``submitted`` lists (client order id, monotonic time) of every send;
    ``faulted`` counts calls that met the stall or the failure (a test's marker: the broker
    hangs or refuses now)."""

    stall_seconds = 30.0

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.stall = False
        self.fail = False
        self.release = threading.Event()
        self.submit_delay = 0.0
        self.submitted: list[tuple[str, float]] = []
        self.faulted = 0

    def _net(self) -> None:
        if self.stall or self.fail:
            self.faulted += 1
        if self.stall:
            self.release.wait(self.stall_seconds)
        if self.fail:
            raise BrokerError("503 service unavailable", retryable=True, status=503)

    def submit_order(self, request):  # type: ignore[no-untyped-def]
        self.submitted.append((request.client_order_id, time.monotonic()))  # it leaves
        self._net()
        if self.submit_delay:
            time.sleep(self.submit_delay)  # ... and is on the wire for a while
        return super().submit_order(request)


def _behind_the_switch(name: str) -> Any:
    def call(self: StallingBroker, *args: Any) -> Any:
        self._net()
        return getattr(SimulatedBroker, name)(self, *args)

    call.__name__ = name
    return call


for _name in ("get_order", "cancel_order", "get_account", "get_ticker", "get_positions",
              "get_clock"):
    setattr(StallingBroker, _name, _behind_the_switch(_name))
