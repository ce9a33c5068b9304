"""``autotrader config`` shows the file's [risk] values and marks each limit changed in the
app (Settings screen, ``autotrader guards set``) with the value in force, read from the data
folder's system DB as the engine reads it at start. Real config file, real DB, the real
commands in this process."""

from __future__ import annotations

from app.cli import main


def _config(capsys, cfg, data) -> list[str]:
    assert main(["config", "--config", str(cfg), "--data-dir", str(data)]) == 0
    return capsys.readouterr().out.splitlines()


def _row(lines: list[str], key: str) -> str:
    return next(line for line in lines if line.split()[:1] == [key])


def test_config_marks_the_limits_changed_in_the_app(capsys, tmp_path) -> None:
    cfg, data = tmp_path / "autotrader.toml", tmp_path / "data"
    cfg.write_text('mode = "demo"\n\n[risk]\nalgo_max_orders_per_day = 30\n')
    cfg.chmod(0o600)
    lines = _config(capsys, cfg, data)  # no DB yet: the file's values, nothing marked
    assert "* in force" not in "\n".join(lines)
    assert _row(lines, "risk.algo_max_orders_per_day").split()[1] == "30"

    assert main(["guards", "set", "algo_max_orders_per_day", "12", "--config", str(cfg),
                 "--data-dir", str(data)]) == 0
    assert "30 -> 12" in capsys.readouterr().out
    lines = _config(capsys, cfg, data)
    row = _row(lines, "risk.algo_max_orders_per_day")
    assert "30 * in force: 12" in row and "changed in the app" in row, row
    assert "* in force" not in _row(lines, "risk.algo_max_drawdown_pct")
    note = lines[-1]
    assert note.startswith("* 1 risk guard changed in the app") and str(data / "system.db") in note

    # A newer value in the file wins (as at the app's start): nothing marked any more.
    cfg.write_text(cfg.read_text().replace("= 30", "= 20"))
    lines = _config(capsys, cfg, data)
    assert _row(lines, "risk.algo_max_orders_per_day").split()[1] == "20"
    assert "* in force" not in "\n".join(lines)
