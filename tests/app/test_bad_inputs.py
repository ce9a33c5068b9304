"""Bad command-line numbers end in a one-line error and exit code 2, never a traceback
(real CLI parsing through ``main``)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("argv", [
    ["run", "--headless", "--minutes", "nan"],
    ["run", "--headless", "--minutes", "inf"],
    ["run", "--headless", "--minutes", "-1"],
    ["run", "--headless", "--speed", "nan"],
    ["backtest", "sma_crossover", "--slippage-bps", "nan"],
    ["backtest", "sma_crossover", "--commission", "nan"],
    ["backtest", "sma_crossover", "--capital", "inf"],
])
def test_bad_number_is_a_one_line_error_with_code_2(argv, capsys):
    from app.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "not a finite number" in err or "must be more than 0" in err
