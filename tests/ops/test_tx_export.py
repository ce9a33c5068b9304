"""``autotrader export transactions --year``: every fill of a year, realised P&L per sale on
the engine's own ledger (the figures on the cards), across years, deleted algorithms too."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from app.engine.ledger import Ledger
from app.ops import tx_export
from db import corporate
from db.system import SystemStore


@pytest.fixture
def system(tmp_path: Path):
    s = SystemStore(tmp_path / "system.db")
    a = s.add_algorithm("sma_crossover", "AAPL", 10_000.0, name="A")
    b = s.add_algorithm("sma_crossover", "MSFT", 5_000.0, name="B")
    s.add_transaction(a, "AAPL", "buy", 10, 100.0, "2024-12-30T15:00:00Z", fill_id="1",
                      commission=1.0)
    s.add_transaction(a, "AAPL", "buy", 10, 110.0, "2025-01-02T15:00:00Z", fill_id="2")
    s.add_transaction(a, "AAPL", "sell", 5, 120.0, "2025-01-03T15:00:00Z", fill_id="3",
                      commission=0.5)
    s.add_transaction(b, "MSFT", "buy", 2, 400.0, "2025-02-03T15:00:00Z", fill_id="4")
    s.add_transaction(b, "MSFT", "sell", 2, 390.0, "2025-02-04T15:00:00Z", fill_id="5")
    corporate.save_actions(s, [{"id": "div1", "ticker": "AAPL", "kind": "cash_dividend",
                                "ex_date": "2025-02-10", "rate": 0.25}])
    corporate.add_event(s, algo_id=a, action_id="div1", ticker="AAPL", type="dividend",
                        cash=3.75, after_tx_id=3, timestamp="2025-02-10T14:30:00Z")
    s.set_algorithm_status(b, "deleted")  # its history still counts
    yield s
    s.close()


def test_realised_per_sale_matches_the_engine_ledger(system: SystemStore) -> None:
    rows = tx_export.year_rows(system, 2025)
    assert [(r["algorithm"], r["type"]) for r in rows] == [
        ("A", "buy"), ("A", "sell"), ("B", "buy"), ("B", "sell"), ("A", "dividend")]
    sale = rows[1]
    # average cost after 10 @ 100 (2024) and 10 @ 110: 105; 5 sold at 120, commission 0.5
    assert sale["realised_pnl"] == pytest.approx(5 * (120 - 105) - 0.5)
    assert sale["position_after"] == 15 and sale["avg_cost_after"] == pytest.approx(105)
    assert rows[3]["realised_pnl"] == pytest.approx(-20.0)
    assert rows[4]["realised_pnl"] == pytest.approx(3.75) and rows[4]["amount"] == 3.75
    # every year's rows add up to the ledger's realised total, as the cards show it
    both = tx_export.year_rows(system, 2024) + rows
    for algo_id in (1, 2):
        led = Ledger.from_transactions(10_000 if algo_id == 1 else 5_000,
                                       system.transactions(algo_id),
                                       corporate.events(system, algo_id))
        assert sum(r["realised_pnl"] for r in both if r["algo_id"] == algo_id) == \
            pytest.approx(led.realised)
    t = tx_export.totals(rows)
    assert t["fills"] == 4 and t["sold"] == pytest.approx(600 + 780)


def test_command_writes_csv_and_refuses_bad_input(system: SystemStore, tmp_path: Path,
                                                  monkeypatch, capsys) -> None:
    monkeypatch.setenv("AUTOTRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("AUTOTRADER_MODE", "demo")
    out = tmp_path / "fills-2025.csv"
    assert tx_export.main(["export", "transactions", "--year", "2025", "--csv", str(out)]) == 0
    said = capsys.readouterr().out
    assert "4 fills of 2025" in said and "realised P&L +58.25" in said
    got = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(got) == 5 and got[1]["realised_pnl"] == "74.5"
    assert tx_export.main(["export", "transactions", "--year", "2025", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["realised_pnl"] == pytest.approx(58.25)
    assert tx_export.main(["export", "transactions", "--year", "1999"]) == 2
    assert "not a year" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        tx_export.main(["export", "transactions", "--year", "last"])
    assert e.value.code == 2
