"""Parameters with ranges (issue 12, item 10): a plugin declares ``param_ranges``; the pad in
"New algorithm" says the range and refuses a value outside it with the reason, and the engine
(the same check for the window, ``autotrader algo add`` and backtests: ``coerce_params``)
refuses it too. Plain class attributes without a range are still accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.conftest import unlocked_window, wait_account

RANGED = '''
"""SMA crossover with declared ranges."""


class Algorithm:
    sma_short = 20
    sma_long = 50
    threshold = 0.5
    label = "x"
    param_ranges = {"sma_short": (2, 200), "sma_long": (5, 400, 5), "threshold": (0.0, 5.0)}

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
'''


@pytest.fixture
def plugin_dir(plugin_dir: Path) -> Path:
    (plugin_dir / "ranged.py").write_text(RANGED)
    return plugin_dir


def test_engine_refuses_values_outside_the_range(rig) -> None:
    with pytest.raises(Exception, match=r"sma_short.*between 2 and 200, got -2"):
        rig.engine.create_algorithm("ranged", "AAPL", 1000.0, {"sma_short": -2})
    with pytest.raises(Exception, match=r"sma_long.*steps of 5 from 5, got 12"):
        rig.engine.create_algorithm("ranged", "AAPL", 1000.0, {"sma_long": 12})
    # In range, and a parameter with no declared range: accepted.
    algo = rig.engine.create_algorithm("ranged", "AAPL", 1000.0,
                                       {"sma_short": 10, "sma_long": 100, "label": "any"})
    assert rig.engine.algorithm_view(algo).params["sma_short"] == 10


def test_pad_shows_the_range_and_refuses_outside(qtbot, window) -> None:
    w = unlocked_window(qtbot, window)
    wait_account(qtbot, w)
    w.open_new()
    qtbot.waitUntil(lambda: any(p["name"] == "ranged" for p in w.new_vm.plugins), timeout=15000)
    vm = w.new_vm
    vm.choosePlugin("ranged")
    for ch in "AAPL":
        vm.key(ch)
    vm.next()
    qtbot.waitUntil(lambda: vm.step == "capital", timeout=15000)
    for ch in "1000":
        vm.key(ch)
    vm.next()
    assert vm.step == "confirm"
    shown = {p["name"]: p for p in vm.paramList}
    assert shown["sma_short"]["rangeText"] == "2 to 200"
    assert shown["sma_long"]["rangeText"] == "5 to 400, steps of 5"
    assert shown["label"]["rangeText"] == ""
    vm.editParam("sma_short")
    for _ in range(4):
        vm.backspace()
    for ch in "-2":
        vm.key(ch)
    vm.next()
    assert vm.step == "param"
    assert vm.message == "sma_short: must be between 2 and 200, got -2."
    qtbot.wait(50)
    rng = w.pages["new"].rootObject().findChild(object, "paramRange")
    assert rng is not None and rng.property("text") == "Valid: 2 to 200"
    vm.backspace()
    vm.backspace()
    for ch in "15":
        vm.key(ch)
    vm.next()
    assert vm.step == "confirm" and {p["name"]: p for p in vm.paramList}["sma_short"][
        "valueText"] == "15"
