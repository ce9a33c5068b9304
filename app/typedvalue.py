"""One parser for typed values typed by people: config keys (TOML or environment), plugin
parameters (the UI's form, ``autotrader algo add --param``, backtests) all follow these rules.

- bool: a bool, or the text true/false, yes/no, on/off, 1/0 (any case);
- int: an int, or a whole number as a float or text ("20" and "20.0"; not "20.5");
- float: a finite number, or its text;
- str: text (a number given for a text value is taken as its text);
- tuple: a list of strings, or text separated by commas or spaces.

A bool is never taken as a number. Base layer: imports nothing of ours.
"""

from __future__ import annotations

import math
import re
import types
from typing import Any, Union, get_args, get_origin

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class ValueTypeError(ValueError):
    """``value`` is not a ``expected``; ``expected`` reads after "expected"/"enter"."""

    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(f"expected {expected}, got {value!r}")
        self.expected, self.value = expected, value


def unwrap_optional(typ: Any) -> Any:
    """``X | None`` -> ``X`` (a value given is never None)."""
    if get_origin(typ) in (Union, types.UnionType):
        args = [a for a in get_args(typ) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return typ


def expected_of(typ: Any) -> str:
    typ = unwrap_optional(typ)
    if typ is bool:
        return "true or false"
    if typ is int:
        return "a whole number"
    if typ is float:
        return "a number"
    if typ is tuple or get_origin(typ) is tuple:
        return "a list of strings"
    return "a string"


def parse_typed(typ: Any, value: Any) -> Any:
    """``value`` as a ``typ`` (bool, int, float, str, tuple[str, ...], or one of them | None);
    ``ValueTypeError`` says what was expected."""
    typ = unwrap_optional(typ)
    text = value.strip() if isinstance(value, str) else None
    if typ is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        raise ValueTypeError(expected_of(typ), value)
    if typ is int or typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueTypeError(expected_of(typ), value)
        if typ is int and isinstance(value, int):
            return value
        try:
            f = float(value)
        except ValueError:
            raise ValueTypeError(expected_of(typ), value) from None
        if not math.isfinite(f) or typ is int and f != int(f):
            raise ValueTypeError(expected_of(typ), value)
        return int(f) if typ is int else f
    if typ is tuple or get_origin(typ) is tuple:
        items = [p for p in re.split(r"[,\s]+", text) if p] if text is not None else value
        if not isinstance(items, list | tuple) or not all(isinstance(x, str) for x in items):
            raise ValueTypeError(expected_of(typ), value)
        return tuple(items)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueTypeError(expected_of(typ), value)
