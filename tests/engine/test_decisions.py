"""What a plugin may answer: the accepted shapes and every refused one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine.decisions import Decision, DecisionRefused, check_against_ledger, parse_decision


@pytest.mark.parametrize("raw, expected", [
    (("buy", 5), Decision("buy", 5)),
    (("sell", 3), Decision("sell", 3)),
    (("hold", 0), Decision("hold", 0)),
    (["buy", 2], Decision("buy", 2)),
    (("buy", 4.0), Decision("buy", 4)),          # a whole float, e.g. cash // price
    (("buy", np.int64(7)), Decision("buy", 7)),
    (("buy", 0), Decision("hold", 0)),           # nothing to do
])
def test_accepted(raw, expected):
    assert parse_decision(raw) == expected


@pytest.mark.parametrize("raw, why", [
    (None, "got None"),
    (("buy", -5), "negative"),
    (("buy", 1.5), "not a whole number"),
    (("buy", math.nan), "NaN"),
    (("sell", math.inf), "infinite"),
    (("buy", np.float64("nan")), "NaN"),
    (("buy", True), "whole number"),
    (("buy", "5"), "whole number"),
    (("buy", 1, 2), "3 values"),
    (("purchase", 1), "unknown action"),
    (("BUY", 1), "unknown action 'BUY'"),       # the contract is exactly lowercase
    (("Sell", 1), "unknown action 'Sell'"),
    (("hold ", 0), "unknown action"),
    ("buy", "got str"),
    ({"action": "buy"}, "got dict"),
])
def test_refused(raw, why):
    with pytest.raises(DecisionRefused, match=why):
        parse_decision(raw)


def test_a_tuple_subclass_is_refused_without_running_its_code():
    class Sneaky(tuple):
        def __len__(self):
            raise AssertionError("plugin code ran on the engine thread")

    with pytest.raises(DecisionRefused):
        parse_decision(Sneaky(("buy", 1)))


def test_ledger_checks():
    check_against_ledger(Decision("sell", 5), cash=0, position=5, last_price=10)
    with pytest.raises(DecisionRefused, match="holds 5"):
        check_against_ledger(Decision("sell", 6), cash=0, position=5, last_price=10)
    check_against_ledger(Decision("buy", 10), cash=100, position=0, last_price=10)
    with pytest.raises(DecisionRefused, match="cash is 100.00"):
        check_against_ledger(Decision("buy", 11), cash=100, position=0, last_price=10)
    with pytest.raises(DecisionRefused, match="no price"):
        check_against_ledger(Decision("buy", 1), cash=100, position=0, last_price=None)
