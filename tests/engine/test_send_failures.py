"""Sending an order when the broker's answer is lost or refused.

The broker here is the real simulated broker with a fault switch in front of
``submit_order``: it stands in for a network that drops the answer (the order may or may not
have arrived). The engine does not retry a send itself (retries live at the broker boundary,
app/broker/retry.py): a failed send stays an intent and is settled by the broker's update
stream or the next poll. The same faults through real alpaca-py against the loopback
emulator (5xx, timeouts, reset connections, with the retry bound) are in
test_send_failures_alpaca.py.
"""

from __future__ import annotations

from datetime import timedelta

from app.broker.base import BrokerError
from app.broker.simulated import SimulatedBroker
from app.engine.facade import Engine
from tests.engine.conftest import PLUGINS, T0, put_bars


class LossyBroker(SimulatedBroker):
    """``fail`` next submits raise a retryable error; ``deliver`` says whether the order
    reached the broker anyway (the answer was lost on the way back), ``silent`` whether the
    broker's update stream is down too."""

    fail = 0
    deliver = False
    silent = False
    calls = 0

    def submit_order(self, request):
        self.calls += 1
        if self.fail:
            self.fail -= 1
            if self.deliver:
                listeners, self._listeners = self._listeners, ([] if self.silent else
                                                               self._listeners)
                try:
                    super().submit_order(request)
                finally:
                    self._listeners = listeners
            raise BrokerError("connection reset", retryable=True, status=503)
        return super().submit_order(request)


def make(system_store, market_store, calendar, clock):
    put_bars(market_store, "AAA", 100.0, T0 - timedelta(hours=2), T0, calendar)
    broker = LossyBroker(system_store, market_store, clock, calendar=calendar, slippage_bps=0)
    engine = Engine(mode="demo", system=system_store, market=market_store, broker=broker,
                    feed=None, clock=clock, calendar=calendar, plugin_dirs=[PLUGINS])
    engine.start()
    return engine, broker


def sim_orders(system_store):
    return system_store.conn.execute("SELECT count(*) FROM sim_orders").fetchone()[0]


def test_the_engine_does_not_resend_on_top_of_the_broker(system_store, market_store,
                                                         calendar, clock):
    engine, broker = make(system_store, market_store, calendar, clock)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    broker.fail, broker.deliver = 1, True  # arrived, but the answer was lost
    clock.set(T0 + timedelta(seconds=2))
    r = engine.run_tick(T0)
    assert [f["shares"] for f in r.fills] == [5] and a not in r.errors
    assert sim_orders(system_store) == 1
    assert broker.calls == 1  # one send from the engine: the broker owns the retries
    engine.close()


def test_the_update_stream_can_tell_what_the_answer_did_not(system_store, market_store,
                                                             calendar, clock):
    engine, broker = make(system_store, market_store, calendar, clock)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    broker.fail, broker.deliver = 3, True  # no answer, but the fill arrives on the stream
    clock.set(T0 + timedelta(seconds=2))
    r = engine.run_tick(T0)
    assert [f["shares"] for f in r.fills] == [5] and a not in r.errors
    assert sim_orders(system_store) == 1
    engine.close()


def test_an_unanswered_order_is_settled_by_asking_the_broker_next_minute(
        system_store, market_store, calendar, clock):
    engine, broker = make(system_store, market_store, calendar, clock)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    broker.fail, broker.deliver, broker.silent = 1, True, True  # arrived, nobody told us
    clock.set(T0 + timedelta(seconds=2))
    r = engine.run_tick(T0)
    assert "not confirmed by the broker yet" in r.errors[a] and r.fills == []
    assert system_store.get_order(f"at-{a}-202406041400")["status"] == "intent"
    clock.set(T0 + timedelta(minutes=1, seconds=2))
    r2 = engine.run_tick(T0 + timedelta(minutes=1))
    # The poll found the first order filled; the minute's new order filled too.
    assert [(f["algo_id"], f["shares"]) for f in r2.fills] == [(a, 5), (a, 5)]
    assert system_store.get_order(f"at-{a}-202406041400")["status"] == "filled"
    assert engine.algorithm_view(a).position == broker.get_positions()["AAA"] == 10
    assert sim_orders(system_store) == 2
    engine.close()


def test_an_order_that_never_arrived_is_canceled_not_sent_late(system_store, market_store,
                                                               calendar, clock):
    engine, broker = make(system_store, market_store, calendar, clock)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    broker.fail, broker.deliver = 3, False
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    engine.stop_algorithm(a)
    clock.set(T0 + timedelta(minutes=1, seconds=2))
    engine.run_tick(T0 + timedelta(minutes=1))
    row = system_store.get_order(f"at-{a}-202406041400")
    assert row["status"] == "canceled" and "never reached the broker" in row["reason"]
    assert sim_orders(system_store) == 0 and broker.get_positions() == {}
    engine.close()
