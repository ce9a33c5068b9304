"""A backtest's progress bar (app/backtest/progress.py) is app/term.Progress: a rich bar on a
terminal, nothing on a pipe; in a backtest child it is not counted as plugin output."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
from pathlib import Path

from app.backtest.pool import _CappedStream, _OutputBudget
from app.backtest.progress import ProgressBar

ROOT = Path(__file__).resolve().parents[2]
PLAIN = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal_nothing_on_a_pipe() -> None:
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = ProgressBar("sma REF", stream=stream)
        bar(0, 1170)
        bar(585, 1170)
        bar(1170, 1170)
    assert pipe.getvalue() == ""
    text = PLAIN.sub("", tty.getvalue())
    assert "100.0%" in text and "sma REF  1,170/1,170 bars" in text and "/s" in text
    assert "\x1b[" in tty.getvalue()  # drawn by rich, with its cursor control


def test_bar_is_not_plugin_output_in_a_backtest_child() -> None:
    """The child's stderr caps what the plugin prints; with the budget spent, the bar still
    draws (on the stream beneath) and spends nothing of it."""
    real = Tty()
    budget = _OutputBudget()
    capped = _CappedStream(real, budget)
    for _ in range(500):
        capped.write("x\n")
    lines_left = budget.lines
    bar = ProgressBar("run", stream=capped)  # type: ignore[arg-type]
    bar(10, 10)
    assert "10/10 bars" in PLAIN.sub("", real.getvalue())
    assert budget.lines == lines_left and budget.dropped == 300


def test_close_ends_a_bar_left_half_way() -> None:
    tty = Tty()
    bar = ProgressBar("run", stream=tty)
    bar(3, 10)
    bar.close()  # the run failed at minute 3: the display ends, its thread with it
    assert bar._bar is None and "3/10 bars" in PLAIN.sub("", tty.getvalue())


def test_a_real_backtest_draws_the_bar_on_a_terminal(tmp_path: Path, ref_csv: Path) -> None:
    """``autotrader backtest`` with stderr on a pseudo-terminal (its run in an isolated child):
    the rich bar reaches the terminal and ends at 100%; stdout (a pipe) has no escape codes."""
    master, slave = os.openpty()
    env = dict(os.environ, COLUMNS="100", TERM="xterm")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "backtest", "sma_crossover", "REF", "--csv",
         str(ref_csv), "--out", str(tmp_path / "r"), "--no-charts"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.wait(timeout=60) == 0, (out, seen)
    os.close(master)
    text = PLAIN.sub("", seen.decode(errors="replace"))
    assert "100.0%" in text and "sma_crossover REF" in text and "1,170/1,170 bars" in text, text
    assert "\x1b[" not in out and "Report:" in out
