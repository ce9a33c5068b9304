"""Issue 12: a plugin is named to the user by its declared ``display_name`` (a class attribute),
else by its module name made readable: on the dashboard's cards, in Detail and on New
algorithm's confirm step. The declared name is not a parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.plugins import discover_plugins
from app.ui.cards import derive
from app.ui.format import plugin_name
from tests.ui.conftest import unlocked_window, wait_account

NAMED = '''
"""Test plugin with a name of its own."""


class Algorithm:
    display_name = "RSI dip buyer"
    period = 14

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
'''


@pytest.fixture
def plugin_dir(plugin_dir: Path) -> Path:
    (plugin_dir / "rsi_dip.py").write_text(NAMED)
    return plugin_dir


def test_plugin_name_prefers_the_declared_one() -> None:
    assert plugin_name("rsi_dip", "RSI dip buyer") == "RSI dip buyer"
    assert plugin_name("buy_once", None) == "Buy once"
    assert plugin_name("sma_crossover", "   ") == "SMA crossover"
    assert plugin_name("rsi2", 42) == "Rsi2"  # not a str: the module's name
    state = {"id": 1, "plugin": "rsi_dip", "plugin_display_name": "RSI dip buyer",
             "initial_capital": 1000.0, "cash": 1000.0, "position": 0}
    assert derive(state)["pluginName"] == "RSI dip buyer"
    assert derive({**state, "plugin_display_name": ""})["pluginName"] == "RSI dip"


def test_display_name_is_not_a_parameter(plugin_dir: Path) -> None:
    found = {p.name: p for p in discover_plugins([plugin_dir])}
    assert found["rsi_dip"].params == {"period": 14}


def test_the_built_in_plugins_declare_their_names() -> None:
    found = {p.name: p for p in discover_plugins([])}
    names = {n: getattr(p.cls, "display_name", None) for n, p in found.items()}
    assert names["rsi2"] == "RSI(2) reversion"
    assert all(isinstance(v, str) and v for v in names.values()), names
    assert all("display_name" not in p.params for p in found.values())


def test_cards_detail_and_confirm_show_the_display_name(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    wait_account(qtbot, w)
    named = rig.engine.create_algorithm("rsi_dip", "AAPL", 1000)
    plain = rig.engine.create_algorithm("buy_once", "MSFT", 1000)
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.cards.count() == 2, timeout=15000)
    assert w.cards.card(named)["pluginName"] == "RSI dip buyer"
    assert w.cards.card(plain)["pluginName"] == "Buy once"
    w.open_detail(named)
    assert w.detail_vm.pluginName == "RSI dip buyer"
    # New algorithm's confirm step names the plugin the same way.
    w.dash_vm.newAlgorithm()
    qtbot.waitUntil(lambda: any(p["name"] == "rsi_dip" for p in w.new_vm.plugins),
                    timeout=15000)
    w.new_vm.choosePlugin("rsi_dip")
    for ch in "AMZN":
        w.new_vm.key(ch)
    w.new_vm.next()
    qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15000)
    assert w.new_vm.tickerInfo.startswith("AMZN \u00b7 Amazon.com \u00b7 $")
    for ch in "2500":
        w.new_vm.key(ch)
    w.new_vm.next()
    qtbot.waitUntil(lambda: w.new_vm.step == "confirm", timeout=15000)
    assert w.new_vm.summary == "RSI dip buyer on AMZN with $2,500.00"
    assert "display_name" not in w.new_vm.pluginParams
