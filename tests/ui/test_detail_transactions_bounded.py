"""Detail's transaction list keeps the latest rows only (a kiosk left on Detail for months of
fills kept one row per fill for good, issue 15's soak)."""

from __future__ import annotations

from app.ui.detail import TransactionModel


def _tx(i: int) -> dict:
    return {"type": "buy" if i % 2 else "sell", "shares": i, "price": 100.0 + i,
            "timestamp": f"2024-06-04T14:{i % 60:02d}:00Z"}


def test_the_list_holds_the_newest_rows_up_to_its_cap(qtbot) -> None:
    m = TransactionModel()
    cap = TransactionModel.MAX_ROWS
    m.set_transactions([_tx(i) for i in range(cap + 30)])  # oldest first, as the DB reads
    assert m.count() == cap
    assert m._rows[0]["sharesText"] == f"{cap + 29:,}"  # newest first
    assert m._rows[-1]["sharesText"] == "30"  # the 30 oldest dropped
    removed = []
    m.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    for i in range(cap + 30, cap + 40):
        m.add(_tx(i))
    assert m.count() == cap and removed == [(cap, cap)] * 10
    assert m._rows[0]["sharesText"] == f"{cap + 39:,}" and m._rows[-1]["sharesText"] == "40"


def test_a_short_list_is_kept_whole(qtbot) -> None:
    m = TransactionModel()
    m.set_transactions([_tx(i) for i in range(1, 4)])
    m.add(_tx(4))
    assert [r["sharesText"] for r in m._rows] == ["4", "3", "2", "1"]
