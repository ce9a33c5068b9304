"""Terminal output for every ``autotrader`` command, through one library (rich).

- ``table``: a table that fits the terminal (80 columns when it is not one): long cells are
  cut with an ellipsis, numbers right-aligned; on a terminal, status words are coloured.
- ``progress``: a progress bar with a rate and the time left on a terminal; elsewhere (a
  pipe, a log, cron) one plain line every few seconds and the last one.
- ``out`` / ``err``: rich consoles on stdout / stderr.

Not a terminal (a pipe, a file, ``NO_COLOR`` set): plain text, no escape codes, no box
drawing, so ``grep`` and ``awk`` read the tables as before. ``--json`` stays the way for
scripts. Base layer: imports nothing of ours.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {"running": "green", "stopped": "yellow", "paused": "magenta",
                 "error": "bold red", "failed": "bold red", "deleted": "dim", "ok": "green",
                 "BROKEN": "bold red", "filled": "green", "rejected": "red",
                 "canceled": "yellow", "cancelled": "yellow", "warn": "yellow", "FAIL": "bold red",
                 "info": "cyan"}
PLAIN_WIDTH = 80  # what a table is fitted to when the output is not a terminal


def console(file: TextIO | None = None) -> Console:
    """A console on ``file`` (default stdout, looked up at call time so tests can capture it):
    colours and boxes only on a terminal."""
    f = sys.stdout if file is None else file
    tty = bool(getattr(f, "isatty", lambda: False)())
    width = None
    if not tty:
        try:
            width = int(os.environ.get("COLUMNS", "")) or PLAIN_WIDTH
        except ValueError:
            width = PLAIN_WIDTH
    return Console(file=f, highlight=False, soft_wrap=False, emoji=False, width=width,
                   force_terminal=tty or None, no_color=not tty or None)


def _is_tty(c: Console) -> bool:
    return c.is_terminal and not c.no_color


def _numeric(text: str) -> bool:
    t = text.replace(",", "").replace("%", "").strip()
    if t in ("", "-"):
        return False
    try:
        float(t.lstrip("+#"))
        return True
    except ValueError:
        return False


def fit_widths(natural: Sequence[int], heads: Sequence[str], width: int,
               shrink: Sequence[str], gap: int = 2, floor: int = 8) -> list[int]:
    """Column widths within ``width``: the columns named in ``shrink`` give way, in that
    order, down to ``floor`` (or their heading); the others keep their natural width."""
    w = list(natural)
    excess = sum(w) + gap * (len(w) - 1) - width
    for name in shrink:
        if excess <= 0:
            break
        if name not in heads:
            continue
        i = list(heads).index(name)
        low = min(w[i], max(floor, len(heads[i])))
        cut = min(excess, w[i] - low)
        w[i] -= cut
        excess -= cut
    return w


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None,
          file: TextIO | None = None, status_col: str | None = "STATUS",
          shrink: Sequence[str] = (), wrap: Sequence[str] = (),
          plain_wrap: bool = False, plain_fit: bool = True) -> None:
    """Print ``rows`` under ``head``, fitted to the terminal's width (80 when it is not a
    terminal): the columns in ``shrink`` give way first, in that order (cut with an
    ellipsis; those also in ``wrap`` wrap instead, on a terminal). Columns whose every cell is
    a number are right-aligned; ``status_col``'s words are coloured on a terminal.
    ``plain_wrap``: the ``wrap`` columns wrap in plain text too (nothing may be cut).
    ``plain_fit=False``: in plain text every column keeps its natural width, one line per row
    however long (paths and names a script or a person copies whole)."""
    c = console(file)
    tty = _is_tty(c)
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    natural = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(head)]
    width = c.width if tty or plain_fit else sum(natural) + 2 * len(natural)
    widths = fit_widths(natural, head, width, list(shrink) or list(head[::-1]))
    t = Table(box=None, show_edge=False, pad_edge=False,
              padding=(0, 1), header_style="bold underline" if tty else "", title=None)
    for i, h in enumerate(head):
        numeric = bool(cells) and all(_numeric(r[i]) or r[i] in ("", "-") for r in cells)
        wraps = (tty or plain_wrap) and h in wrap  # else one line per row (grep, awk)
        t.add_column(Text(h), justify="right" if numeric else "left", no_wrap=not wraps,
                     overflow="fold" if wraps else "ellipsis", min_width=widths[i],
                     max_width=widths[i])
    si = list(head).index(status_col) if status_col is not None and status_col in head else -1
    for r in cells:
        # Text, not str: rich would read "[ui] rotation" or a plugin's "[x]" as markup and
        # drop it.
        row: list[Any] = [Text(v) for v in r]
        if tty and si >= 0:
            row[si] = Text(r[si], style=STATUS_STYLES.get(r[si], ""))
        t.add_row(*row)
    if title:
        c.print(Text(title, style="bold" if tty else ""))
    if tty:
        c.print(t)
        return
    buf = io.StringIO()  # plain text: the same table without the cells' trailing blanks
    Console(file=buf, width=width, no_color=True, highlight=False, emoji=False).print(t)
    text = "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())
    if not str(getattr(c.file, "encoding", "utf-8") or "utf-8").lower().startswith("utf"):
        text = text.replace("\u2026", "~")  # no ellipsis in this encoding
    c.file.write(text)
    c.file.flush()


def notes(title: str, lines: Sequence[str], file: TextIO | None = None,
          style: str = "red") -> None:
    """A heading and indented lines (wrapped on a terminal, in ``style``; plain elsewhere)."""
    c = console(file)
    tty = _is_tty(c)
    c.print(Text(title, style="bold" if tty else ""))
    for line in lines:
        if tty:
            c.print(Text("  " + line, style=style), soft_wrap=False)
        else:
            c.file.write("  " + line + "\n")
    c.file.flush()


def signed_style(v: float | None) -> str:
    return "" if not v else ("green" if v > 0 else "red")


class Progress:
    """``update(done, total, **fields)``; on a terminal a rich bar with ``fields`` rendered by
    ``describe``; elsewhere a plain line at most every ``every`` seconds, and the last one."""

    def __init__(self, describe: Any, file: TextIO | None = None, every: float = 5.0) -> None:
        self.describe = describe  # (done, total, fields) -> str
        self.file = sys.stderr if file is None else file
        self.every = every
        self.c = console(self.file)
        self.tty = _is_tty(self.c)
        self._last = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.tty:
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(BarColumn(bar_width=16),
                                     TextColumn("{task.percentage:>5.1f}%  {task.description}",
                                                markup=False),  # the text as written
                                     console=self.c, transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=1)
        return self

    def update(self, done: int, total: int, **fields: Any) -> None:
        text = self.describe(done, total, fields)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=max(1, total), description=text)
            return
        now = time.monotonic()
        if done < total and now - self._last < self.every:
            return
        self._last = now
        pct = 100.0 * done / max(1, total)
        print(f"{pct:5.1f}%  {text}", file=self.file, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@contextmanager
def progress(describe: Any, file: TextIO | None = None, every: float = 5.0
             ) -> Iterator[Progress]:
    p = Progress(describe, file, every)
    with p:
        yield p
