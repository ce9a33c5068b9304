"""``backtest --guards`` uses the risk limits in force: the config's [risk] with the changes
made in the app (Settings screen, ``autotrader guards set``), stored in the data folder's
system DB, read as the engine reads them at start; the report says which source it used
(issue 10). Real config file, real system DB changed by the real ``guards set`` command."""

from __future__ import annotations

import json

from app.cli import main
from tests.backtest.test_guards import _run, _setup


def test_guards_follow_a_change_made_in_the_app(capsys, tmp_path, ref_csv):
    cfg = _setup(tmp_path)  # the config's [risk]: algo_max_orders_per_day = 3
    # No data folder yet: the config's limits, and the report says so.
    rc, text, err, rep = _run(capsys, tmp_path, ref_csv, cfg, "--guards")
    assert rc == 0, err
    src = rep["settings"]["risk_guards"]["source"]
    assert src.startswith("the config's [risk]") and "does not exist" in src, src
    assert f"Risk guards: {src}" in text
    assert rep["settings"]["risk_guards"]["limits"]["algo_max_orders_per_day"] == 3
    first = [p for p in rep["problems"] if p["kind"] == "guard"]
    assert len(first) == 1 and "orders" in first[0]["reason"]

    # The limit changed as the app would (the offline 'guards set': the engine's own edit).
    rc = main(["guards", "set", "algo_max_orders_per_day", "9", "--config", str(cfg),
               "--data-dir", str(tmp_path / "data")])
    assert rc == 0, capsys.readouterr().err
    assert "3 -> 9" in capsys.readouterr().out
    rc, text, err, rep = _run(capsys, tmp_path, ref_csv, cfg, "--guards")
    assert rc == 0, err
    src = rep["settings"]["risk_guards"]["source"]
    assert src.startswith("the limits in force") and "algo_max_orders_per_day 3 -> 9" in src
    assert str(tmp_path / "data" / "system.db") in src and f"Risk guards: {src}" in text
    assert rep["settings"]["risk_guards"]["limits"]["algo_max_orders_per_day"] == 9
    later = [p for p in rep["problems"] if p["kind"] == "guard"]
    assert len(later) == 1 and later[0]["timestamp"] > first[0]["timestamp"], (first, later)
    assert rep["metrics"]["fills"] > 4  # nine orders before the stop, not three

    # A newer config value wins over the stored change, as at the app's start.
    cfg.write_text(cfg.read_text().replace("algo_max_orders_per_day = 3",
                                           "algo_max_orders_per_day = 4"))
    rc, text, err, rep = _run(capsys, tmp_path, ref_csv, cfg, "--guards")
    assert rc == 0, err
    src = rep["settings"]["risk_guards"]["source"]
    assert "no change made in the app applies" in src, src
    assert rep["settings"]["risk_guards"]["limits"]["algo_max_orders_per_day"] == 4


def test_without_guards_the_report_names_no_limits(capsys, tmp_path, ref_csv):
    cfg = _setup(tmp_path)
    rc, text, err, rep = _run(capsys, tmp_path, ref_csv, cfg)
    assert rc == 0, err
    assert rep["settings"]["risk_guards"] is None and "Risk guards:" not in text
    assert json.dumps(rep)  # still plain JSON
