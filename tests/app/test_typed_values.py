"""One set of rules for typed values: the config, the engine's plugin parameters and the UI's
form accept and refuse the same texts."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings
from app.engine.plugins import coerce_params, load_plugin
from app.typedvalue import ValueTypeError, parse_typed
from app.ui.newalgo import parse_param


@pytest.mark.parametrize(("typ", "raw", "value"), [
    (int, "20", 20), (int, "20.0", 20), (int, 20.0, 20), (int, " 7 ", 7),
    (float, "2.5", 2.5), (float, 3, 3.0), (float, "1e3", 1000.0),
    (bool, "Yes", True), (bool, "off", False), (bool, True, True),
    (str, "abc", "abc"), (str, 5, "5"),
    (tuple[str, ...], "a, b c", ("a", "b", "c")), (tuple[str, ...], ["x"], ("x",)),
    (float | None, "1.5", 1.5),
])
def test_accepted(typ, raw, value) -> None:
    got = parse_typed(typ, raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("typ", "raw", "expected"), [
    (int, "20.5", "a whole number"), (int, True, "a whole number"), (int, "ten", "a whole number"),
    (int, "inf", "a whole number"), (float, "nan", "a number"), (float, False, "a number"),
    (float, None, "a number"), (bool, "maybe", "true or false"), (bool, 1.0, "true or false"),
    (tuple[str, ...], [1, 2], "a list of strings"), (str, None, "a string"),
])
def test_refused(typ, raw, expected) -> None:
    with pytest.raises(ValueTypeError) as e:
        parse_typed(typ, raw)
    assert e.value.expected == expected


@pytest.mark.parametrize(("text", "ok"), [("20", True), ("20.0", True), ("20.5", False),
                                          ("x", False)])
def test_engine_and_ui_agree_on_an_int_parameter(text, ok) -> None:
    info = load_plugin("sma_crossover", [])
    default = info.params["sma_short"]
    assert type(default) is int
    if ok:
        assert coerce_params(info, {"sma_short": text}) == {"sma_short": 20}
        assert parse_param(default, text) == 20
    else:
        with pytest.raises(ValueError, match="must be a whole number"):
            coerce_params(info, {"sma_short": text})
        with pytest.raises(ValueError, match="Enter a whole number"):
            parse_param(default, text)


def test_config_reads_types_not_annotation_text(tmp_path) -> None:
    s = load_settings(tmp_path / "none.toml", env={"AUTOTRADER_DEMO_SPEED": "30",
                                                    "AUTOTRADER_ALPACA_BACKFILL_DAYS": "7.0"})
    assert s.demo.speed == 30.0 and s.alpaca.backfill_days == 7
    with pytest.raises(ConfigError, match="expected a whole number"):
        load_settings(tmp_path / "none.toml", env={"AUTOTRADER_ALPACA_BACKFILL_DAYS": "5.5"})
