"""The engine's pushed snapshot (on_snapshot, after a fill, stop or pause) reaches the card at
once, from any thread, with the ledger's figures: no engine read in between."""

from __future__ import annotations

import threading
from dataclasses import replace

from app.engine.ledger import marked_value
from tests.ui.conftest import unlocked_window


def test_a_pushed_snapshot_updates_the_card_without_a_read(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    aid = rig.in_thread(lambda: rig.engine.create_algorithm("buy_once", "MSFT", 5000))
    qtbot.waitUntil(lambda: w.cards.card(aid) is not None, timeout=15000)
    view = rig.engine.algorithm_view(aid)
    assert view.position == 0
    # What the engine pushes after a fill of 10 shares at 100: the ledger's own figures.
    pushed = replace(view, cash=view.cash - 1000.0, position=10, avg_cost=100.0,
                     last_price=101.0,
                     value=marked_value(view.cash - 1000.0, 10, 100.0, 101.0),
                     pnl=10.0, pnl_pct=0.2)
    reads = []
    w.worker.views.connect(lambda *a: reads.append(1))
    t = threading.Thread(target=rig.engine._listeners.each,  # as the engine's own thread does
                         args=(lambda lst: lst.on_snapshot(pushed, None)
                               if hasattr(lst, "on_snapshot") else None,))
    t.start()
    t.join(10)
    qtbot.waitUntil(lambda: w.cards.card(aid)["positionText"].startswith("10 sh"), timeout=5000)
    card = w.cards.card(aid)
    assert card["valueText"] == "$5,010.00" and card["pnlText"].startswith("+$10")
    assert reads == [], "the card changed from the push, not from a new read"
