"""Bad input to the operator's commands: one clear line on stderr and exit code 2, no
traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from db.system import SystemStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args,says", [
    (["report", "--since", "2024-06-01", "--out", "{file}/charts"], "Not a directory"),
    (["report", "--since", "2024-06-01", "--benchmark", "bad!"], "is not a ticker symbol"),
    (["report", "--since", "June"], "invalid fromisoformat value"),
    (["export", "transactions", "--year", "2024", "--csv", "{file}/f.csv"], "Not a directory"),
    (["status-url", "--qr-png", "{file}/q.png"], "Not a directory"),
    (["algo", "add", "sma_crossover", "AAPL", "--capital", "-5"], "must be more than 0"),
    (["algo", "add", "sma_crossover", "AAPL", "--capital", "10", "--param", "x"],
     "expected NAME=VALUE"),
    (["data", "fetch", "A B", "--start", "2024-01-02", "--end", "2024-01-05"],
     "is not a ticker symbol"),
    (["notify", "--test"], "no notification target"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    env.update(HOME=str(tmp_path / "h"), XDG_CONFIG_HOME=str(tmp_path / "h"),
               AUTOTRADER_DATA_DIR=str(tmp_path / "d"), AUTOTRADER_LOG_DIR=str(tmp_path / "l"),
               AUTOTRADER_DEMO_START_DATE="2024-06-04")
    (tmp_path / "d").mkdir()
    SystemStore(tmp_path / "d" / "system.db").close()  # an installed app's (empty) database
    a_file = tmp_path / "a-file"  # a path under a file cannot be made, even by root
    a_file.write_text("")
    args = [a.replace("{file}", str(a_file)) for a in args]
    r = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, text=True,
                       capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert says in r.stderr and "Traceback" not in r.stderr
    assert a_file.read_text() == "" and not list(tmp_path.glob("*.png"))
