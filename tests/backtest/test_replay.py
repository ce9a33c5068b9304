"""The event loop runs any plugin safely: faults become refusals or errors, never a crash,
and never a look into the future."""

from __future__ import annotations

import sys
import time

import pytest

import db
from app.backtest.errors import BacktestError
from app.backtest.replay import run_event
from app.backtest.run import resolve_plugin
from db.timeutil import iso_z
from tests.backtest.conftest import PLUGINS


def plugin(name: str):
    return resolve_plugin(name, (PLUGINS,))


def test_exceptions_are_errors_and_the_run_goes_on(ref_bars):
    bars = ref_bars.slice(0, 50)
    r = run_event(plugin("raises"), {}, bars, 0, 1000.0)
    assert r.errors == 47 and r.decisions["hold"] == 3
    assert r.problems[0]["kind"] == "error"
    assert r.problems[0]["reason"] == "run() raised RuntimeError: boom"
    assert r.problems[0]["timestamp"] == iso_z(int(bars.ts[3]))
    assert r.metrics.final_equity == 1000.0


def test_garbage_answers_are_refused_with_the_reason(ref_bars):
    r = run_event(plugin("garbage"), {}, ref_bars.slice(0, 9), 0, 1000.0)
    reasons = [p["reason"] for p in r.problems]
    assert r.refused == 9 and not r.fills
    assert reasons[0] == "share count -5 is negative"
    assert "not a whole number" in reasons[1]
    assert "got None" in reasons[2]
    assert "NaN" in reasons[3]
    assert "unknown action" in reasons[4]
    assert reasons[5] == "sell 3 refused: holds 0"
    assert reasons[6].startswith("buy 1000000000 refused: costs")
    assert "got str" in reasons[7] and "3 values" in reasons[8]


def test_orders_fill_at_the_next_open_and_the_ledger_checks_sells(ref_bars):
    bars = ref_bars.slice(0, 10)
    r = run_event(plugin("trader"), {}, bars, 0, 10_000.0, slippage_bps=10.0,
                  commission_per_share=0.01)
    assert [(f["i"], f["type"], f["shares"]) for f in r.fills] == [(1, "buy", 10),
                                                                      (5, "sell", 10)]
    buy, sell = r.fills
    assert buy["price"] == round(bars.o[1] * 1.001, 4)
    assert sell["price"] == round(bars.o[5] * 0.999, 4)
    assert r.problems == [{"timestamp": iso_z(int(bars.ts[3])), "kind": "refused",
                           "reason": "sell 15 refused: holds 10"}]
    expected = 10_000.0 - 10 * buy["price"] - 0.1 + 10 * sell["price"] - 0.1
    assert r.metrics.final_equity == pytest.approx(expected)
    assert r.metrics.trades == 1 and r.metrics.commission == pytest.approx(0.2)


def test_fill_at_close_uses_the_last_close_seen(ref_bars):
    bars = ref_bars.slice(0, 10)
    r = run_event(plugin("trader"), {}, bars, 0, 10_000.0, fill="close")
    assert r.fills[0]["price"] == bars.c[0] and r.fills[1]["price"] == bars.c[4]


def test_a_plugin_never_sees_bars_at_or_after_its_minute(ref_bars):
    info = plugin("peeker")
    peeker = sys.modules[info.cls.__module__]
    peeker.SEEN.clear()
    sentinel = object()
    db.use_provider(sentinel)  # e.g. a live engine's; the backtest must neither use nor change it
    run_event(info, {}, ref_bars, 400, 1000.0)
    assert db._provider is sentinel and db._thread.provider is None
    db.use_provider(None)
    assert len(peeker.SEEN) == len(ref_bars) - 400
    for now, future_ask, no_before, latest in peeker.SEEN:
        stamp = iso_z(now)
        assert future_ask and all(t < stamp for t in future_ask)
        assert future_ask == no_before
        assert latest == ref_bars.c[int(ref_bars.ts.searchsorted(int(now.timestamp()))) - 1]
        assert future_ask[-1] == iso_z(int(now.timestamp()) - 60) or now.minute == 30


def test_a_hung_call_is_interrupted_after_the_time_limit(ref_bars):
    t0 = time.monotonic()
    r = run_event(plugin("sleepy"), {}, ref_bars.slice(0, 20), 0, 1000.0, timeout_s=0.3)
    assert time.monotonic() - t0 < 10  # not the plugin's 30 s
    assert r.errors == 1
    assert "took longer than 0.3 s" in r.problems[0]["reason"]
    assert r.decisions["hold"] == 19


def test_modified_bars_are_reported_and_transactions_are_read_only(ref_bars):
    r = run_event(plugin("mutator"), {}, ref_bars.slice(0, 30), 0, 1000.0)
    warnings = [p["reason"] for p in r.problems if p["kind"] == "warning"]
    assert warnings and "modified the REF bars" in warnings[0]
    assert r.errors == 1


def test_a_plugin_failing_to_start_is_a_clear_error(ref_bars):
    with pytest.raises(BacktestError, match="failed to start: ValueError: no config"):
        run_event(plugin("bad_init"), {}, ref_bars.slice(0, 5), 0, 1000.0)


def test_other_tickers_come_from_the_market_db_and_a_csv_run_warns(
        ref_bars, ref_csv, data_dir, market_store):
    from app.backtest.run import Spec, load_bars, run

    for ticker, factor in (("REF", 1.0), ("SPY", 4.0)):
        market_store.insert_rows(
            (ticker, int(t), o * factor, h * factor, lo * factor, c * factor, int(v))
            for t, o, h, lo, c, v in zip(ref_bars.ts.tolist(), ref_bars.o.tolist(),
                                         ref_bars.h.tolist(), ref_bars.l.tolist(),
                                         ref_bars.c.tolist(), ref_bars.v.tolist(), strict=True))
    info = plugin("market_filter")
    seen = sys.modules[info.cls.__module__].SEEN
    spec = Spec("market_filter", "REF", market_db=data_dir / "market.db", plugin_dirs=(PLUGINS,))
    seen.clear()
    r = run(spec, load_bars(spec))
    assert len(seen) == 1170 and not r.problems
    for now, stamps, latest in seen[1:]:
        assert stamps[-1] == iso_z(int(now.timestamp()) - 60) or now.minute == 30
        assert stamps[-1] < iso_z(now)
        i = int(ref_bars.ts.searchsorted(int(now.timestamp())))
        assert latest == pytest.approx(ref_bars.c[i - 1] * 4.0)
    seen.clear()
    r = run(Spec("market_filter", "REF", csv=ref_csv, plugin_dirs=(PLUGINS,)))
    assert seen[-1][1] == [] and seen[-1][2] is None
    assert r.problems[0]["kind"] == "warning" and "asked for SPY bars" in r.problems[0]["reason"]


def test_a_plugin_cannot_change_the_history(ref_bars):
    bars = ref_bars.slice(0, 20)
    r = run_event(plugin("writer"), {}, bars, 0, 1000.0)
    assert r.problems[0]["kind"] == "warning"
    assert "tried to store bars 20 times" in r.problems[0]["reason"]
    assert r.errors == 0 and r.decisions["hold"] == 20


def test_a_plugin_swallowing_the_interruption_is_still_stopped_and_refused(ref_bars):
    t0 = time.monotonic()
    r = run_event(plugin("stubborn"), {}, ref_bars.slice(0, 10), 0, 1000.0, timeout_s=0.2)
    assert time.monotonic() - t0 < 10
    assert r.errors == 1 and not r.fills  # the late "buy" is not executed
    assert "took longer than 0.2 s" in r.problems[0]["reason"]
