"""The card model's per-role updates and the pure formatting helpers."""

from __future__ import annotations

from app.ui import format as fmt
from app.ui.cards import ROLES, CardModel, derive
from app.ui.settings_vm import compact_log_line


def view(**kw):
    base = {"id": 1, "name": "n", "plugin": "sma_crossover", "ticker": "AAPL",
            "status": "running", "error": None, "initial_capital": 1000.0, "cash": 500.0,
            "position": 5, "avg_cost": 100.0, "last_price": 100.0, "value": 1000.0, "pnl": 0.0,
            "pnl_pct": 0.0, "realised": 0.0, "unrealised": 0.0, "params": {}}
    base.update(kw)
    return base


def test_derive_pnl_from_ledger_and_price() -> None:
    shown = derive(view(last_price=110.0))
    assert shown["pnlText"] == "+$50.00" and shown["pnlPctText"] == "+5.00%"
    assert shown["pnlSign"] == 1 and shown["positionText"] == "5 sh @ $100.00"
    shown = derive(view(last_price=90.0, position=0, cash=950.0))
    assert shown["pnlText"] == "\u2212$50.00" and shown["positionText"] == "no position"


def test_card_model_announces_only_changed_roles(qtbot) -> None:
    m = CardModel()
    m.set_views([view(), view(id=2, ticker="MSFT")], {"AAPL": [1.0, 2.0]})
    assert m.rowCount() == 2 and m.card(1)["spark"] == [1.0, 2.0]
    changes = []
    m.dataChanged.connect(lambda a, b, roles: changes.append((a.row(), sorted(roles))))
    m.apply_bar("AAPL", 1_709_649_000, 101.0)
    assert len(changes) == 1 and changes[0][0] == 0
    names = {n for n, r in ROLES.items() if r in changes[0][1]}
    assert names == {"lastPriceText", "valueText", "pnlText", "pnlPctText", "pnlSign", "spark",
                     "holdingText"}  # "50 sh · $8,770 of $10,000" shows the value too
    assert m.card(1)["lastPriceText"] == "$101.00" and m.card(2)["lastPriceText"] == "$100.00"
    changes.clear()
    m.set_views([view(status="error", error="plugin raised ValueError")])
    assert m.rowCount() == 1 and m.card(2) is None
    names = {n for n, r in ROLES.items() if r in changes[-1][1]}
    assert {"status", "statusText", "error"} <= names and "ticker" not in names


def test_formatting() -> None:
    assert fmt.money(1234.5) == "$1,234.50" and fmt.money(None) == "\u2014"
    assert fmt.signed_pct(-0.004) == "0.00%" and fmt.signed_pct(1.234) == "+1.23%"
    assert fmt.countdown(3725) == "1:02:05" and fmt.countdown(90_000) == "1 d 01:00"
    assert compact_log_line("2026-11-25 11:33:31,064 - INFO - app.x - a - b") == \
        "11:33:31 INFO app.x: a - b"
