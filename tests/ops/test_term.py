"""Terminal output (app/term.py, rich): plain text off a terminal, colours and a bar on one,
tables fitted to 80 columns; and the commands that use it, as a pipe sees them."""

from __future__ import annotations

import io
import re

from app import term

ESC = re.compile(r"\x1b\[")
ROWS = [["1", "A very long algorithm name indeed", "sma_crossover", "AAPL", "running", "98",
         "19,731.55", "-268.45", "the broker refused the order: insufficient buying power"],
        ["12", "B", "rsi2", "MSFT", "error", "0", "5,000.00", "+0.00", ""]]
HEAD = ["ID", "NAME", "PLUGIN", "TICKER", "STATUS", "POS", "VALUE", "P&L", "LAST ERROR"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_table_fits_80_columns_one_line_per_row_no_escapes(monkeypatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    term.table(HEAD, ROWS, file=out, shrink=("LAST ERROR", "NAME"), wrap=("LAST ERROR",))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and not ESC.search(out.getvalue())
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines)
    assert lines[0].startswith("ID  NAME")
    assert "sma_crossover" in lines[1] and "19,731.55" in lines[1] and "\u2026" in lines[1]
    # numbers right-aligned: the shorter value ends where the longer one does
    assert lines[1].index("19,731.55") + 9 == lines[2].index("5,000.00") + 8
    monkeypatch.setenv("COLUMNS", "200")  # a wide pipe: nothing cut
    wide = io.StringIO()
    term.table(HEAD, ROWS, file=wide)
    assert "insufficient buying power" in wide.getvalue()


def test_terminal_table_colours_status_and_wraps_instead_of_cutting(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Tty()
    term.table(HEAD, ROWS, file=out, shrink=("LAST ERROR", "NAME"), wrap=("LAST ERROR",))
    text = out.getvalue()
    assert ESC.search(text)  # bold header, coloured status
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert all(len(line) <= 80 for line in plain.splitlines())
    assert "buying" in plain and "power" in plain  # wrapped over lines, not cut


def test_fit_widths_gives_way_in_order() -> None:
    heads = ["ID", "NAME", "NOTE"]
    assert term.fit_widths([2, 30, 60], heads, 80, ["NOTE", "NAME"]) == [2, 30, 44]
    assert term.fit_widths([2, 30, 60], heads, 40, ["NOTE", "NAME"]) == [2, 26, 8]
    assert term.fit_widths([2, 3, 4], heads, 80, ["NOTE"]) == [2, 3, 4]


def test_progress_plain_lines_are_spaced_and_the_last_is_always_said() -> None:
    out = io.StringIO()
    with term.progress(lambda d, t, f: f"{d}/{t} sessions, {f['bars']} bars", out,
                       every=3600) as p:
        for i in range(1, 11):
            p.update(i, 10, bars=i * 390)
    lines = out.getvalue().splitlines()
    assert lines == ["100.0%  10/10 sessions, 3900 bars"] or (
        len(lines) == 2 and lines[-1] == "100.0%  10/10 sessions, 3900 bars")
    assert not ESC.search(out.getvalue())


def test_progress_bar_on_a_terminal() -> None:
    out = Tty()
    with term.progress(lambda d, t, f: f"{d}/{t} sessions", out) as p:
        p.update(5, 10)
        p.update(10, 10)
    assert "10/10 sessions" in out.getvalue() and "100.0%" in out.getvalue()


def test_brackets_in_cells_are_text_not_markup(monkeypatch) -> None:
    """A finding naming "[ui] rotation", a plugin error quoting "[bold]": shown as written,
    on a terminal and off one (rich would otherwise take them for style tags and drop them)."""
    monkeypatch.setenv("COLUMNS", "200")
    row = [["ok", "rotation", "90 degrees from autotrader.toml ([ui] rotation), [bold]x[/bold]"]]
    for out in (io.StringIO(), Tty()):
        term.table(["STATUS", "CHECK", "FINDING"], row, file=out)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
        assert "([ui] rotation), [bold]x[/bold]" in plain


def test_progress_text_is_not_markup() -> None:
    out = Tty()
    with term.progress(lambda d, t, f: f"[x] {d}/{t} sessions", out) as p:
        p.update(2, 2)
    assert "[x] 2/2 sessions" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
