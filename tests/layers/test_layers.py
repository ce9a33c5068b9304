"""Every module of app/, db/ and algorithm/ imports only what its layer may (DESIGN.md).

Read statically (ast, every ``import`` in the file, function-level ones included), so a lazy
import cannot hide an upward dependency. The layers, bottom to top:

    base       app (version), app.config, app.config_write, app.cliargs, app.clock,
               app.clocksane, app.logging_setup, app.memtrim, app.term (terminal output),
               app.typedvalue, app.listeners, app.testhooks, db.timeutil, db.calendar
                                                               import nothing of ours
    db         db.*                                            base
    services   app.broker, app.marketdata, app.security,       db, base
               algorithm (plugins: db and algorithm only)
    engine     app.engine                                      services, db, base
    apps       app.backtest, app.ops, app.control              engine and below
    top        app.ui, app.cli, app.control.cli                everything

db/ imports nothing from app/ (worker processes and plugins load it without the app).
Within services, marketdata may use broker's Alpaca clients (never the reverse). Modules of
the same package may import each other. SQL lives in db/ only (string literals that start
with SELECT / INSERT / UPDATE / DELETE / PRAGMA, and ``.execute`` calls).

``ALLOWED_EXCEPTIONS`` and ``SQL_OUTSIDE_DB`` are debts with a reason; they may only shrink
(a test fails when an entry is no longer needed, so it gets deleted).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("app", "db", "algorithm")
QT = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6")

BASE = {"app", "app.config", "app.config_write", "app.cliargs", "app.clock", "app.clocksane", "app.logging_setup",
        "app.memtrim", "app.term", "app.testhooks", "app.typedvalue", "app.listeners", "db.timeutil",
        "db.calendar"}
# Module prefix -> layer; the longest matching prefix wins.
LAYER_OF = {
    "db": "db",
    "app.broker": "broker",
    "app.marketdata": "marketdata",
    "app.security": "security",
    "algorithm": "algorithm",
    "app.engine": "engine",
    "app.backtest": "backtest",
    "app.ops": "ops",
    "app.control": "control",
    "app.control.cli": "top",  # the ``autotrader algo`` command line: an entry point
    "app.cli": "top",
    "app.ui": "top",
}
# What each layer may import (besides base, and its own package).
MAY_IMPORT = {
    "base": set(),
    "db": set(),
    "broker": {"db"},
    "marketdata": {"db", "broker"},
    "security": {"db"},
    "algorithm": {"db"},
    "engine": {"db", "broker", "marketdata", "security", "algorithm"},
    "backtest": {"db", "broker", "marketdata", "security", "algorithm", "engine"},
    "ops": {"db", "broker", "marketdata", "security", "engine"},
    "control": {"db", "broker", "marketdata", "security", "engine"},
    "top": {"db", "broker", "marketdata", "security", "algorithm", "engine", "backtest", "ops",
            "control", "top"},
}
QT_ALLOWED = {"top"}

# (importer, imported) -> why it is still allowed. Only shrinks.
ALLOWED_EXCEPTIONS: dict[tuple[str, str], str] = {}

# Modules outside db/ that still hold SQL -> why. Only shrinks.
SQL_OUTSIDE_DB: dict[str, str] = {
    "app.ops.backup": "SQLite's online backup of whole files (PRAGMAs on a copy), not a store",
    "app.ops.restore": "checks and swaps whole DB files before any store opens them",
    "app.ops.dbcheck": "integrity_check / table counts of a file, read-only, not a store",
}

SQL_TEXT = re.compile(r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s"
                      r"|DELETE\s+FROM\s|PRAGMA\s+\w+\s*(=|\(|$))", re.DOTALL)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    out = {}
    for top in OURS:
        for f in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in f.parts:
                out[module_name(f)] = f
    return out


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    best = ""
    for prefix in LAYER_OF:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if not best:
        raise KeyError(f"{module} has no layer: add it to LAYER_OF or BASE")
    return LAYER_OF[best]


def package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "app" else parts[0]


def imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every module ``module`` names in an import, with the line (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, node.lineno))
            # ``from app import config`` names the module app.config.
            known = modules()
            out += [(f"{name}.{a.name}", node.lineno) for a in node.names
                    if f"{name}.{a.name}" in known]
    return out


def violations() -> list[str]:
    found = []
    used: set[tuple[str, str]] = set()
    for mod, path in modules().items():
        mine = layer(mod)
        for name, line in imports(mod, path):
            top = name.split(".")[0]
            if top in QT and mine not in QT_ALLOWED:
                found.append(f"{mod}:{line} imports {name} (Qt only in app/ui and app/cli)")
                continue
            if top not in OURS:
                continue
            target = name
            while target not in modules() and "." in target:
                target = target.rsplit(".", 1)[0]
            if target not in modules():
                found.append(f"{mod}:{line} imports {name}, which does not exist")
                continue
            theirs = layer(target)
            if mod.startswith("db") and target.startswith("app"):
                found.append(f"{mod}:{line} imports {target}: db/ imports nothing from app/")
                continue
            if theirs == "base" and mine != "base" or package(target) == package(mod):
                if mine == "base" and theirs != "base":
                    found.append(f"{mod}:{line} (base) imports {target} ({theirs})")
                continue
            if mine == "algorithm" and theirs != "db" and theirs != "algorithm":
                found.append(f"{mod}:{line} (a plugin) imports {target}: db and algorithm only")
                continue
            if theirs in MAY_IMPORT[mine] or theirs == "base" and mine == "base":
                continue
            if (mod, target) in ALLOWED_EXCEPTIONS:
                used.add((mod, target))
                continue
            found.append(f"{mod}:{line} ({mine}) imports {target} ({theirs})")
    for stale in set(ALLOWED_EXCEPTIONS) - used:
        found.append(f"ALLOWED_EXCEPTIONS entry {stale} is no longer needed: delete it")
    return found


def test_every_import_follows_the_layers() -> None:
    assert "app.engine.facade" in modules() and "db.market" in modules()
    assert violations() == []


def sql_in(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    lines = []
    for node in ast.walk(tree):
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str) \
            and bool(SQL_TEXT.match(node.value))
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("execute", "executemany", "executescript")
        if literal or call:
            lines.append(getattr(node, "lineno", 0))
    return lines


def test_sql_lives_in_db_only() -> None:
    outside = {mod: sql_in(path) for mod, path in modules().items()
               if not mod.startswith("db")}
    offenders = {mod: lines for mod, lines in outside.items()
                 if lines and mod not in SQL_OUTSIDE_DB}
    assert offenders == {}, "SQL outside db/ (move it into a db store)"
    stale = [mod for mod in SQL_OUTSIDE_DB if not outside.get(mod)]
    assert stale == [], "no SQL left there: delete these SQL_OUTSIDE_DB entries"


@pytest.mark.parametrize(("importer", "imported", "ok"), [
    ("db.market", "db.timeutil", True),
    ("db.market", "app.config", False),
    ("app.broker.simulated", "app.engine.orders", False),
    ("app.engine.tick", "app.broker.base", True),
    ("app.engine.runner", "app.control.server", False),
    ("app.control.cli", "app.cli", True),
    ("app.ui.app", "app.engine.facade", True),
    ("app.ops.backup", "app.backtest.run", False),
    ("db.timeutil", "db.system", False),
])
def test_the_table_itself(importer: str, imported: str, ok: bool) -> None:
    mine, theirs = layer(importer), layer(imported)
    upward_from_db = importer.startswith("db") and imported.startswith("app")
    allowed = not upward_from_db and (
        theirs == "base" and mine != "base" or theirs in MAY_IMPORT[mine]
        or package(importer) == package(imported) and mine != "base")
    assert allowed is ok


def test_lazy_and_relative_imports_are_read(tmp_path: Path) -> None:
    src = tmp_path / "fake.py"
    src.write_text("import os\n\n\ndef later():\n    from app.ui import app\n"
                   "    from .orders import OrderBook\n    import PySide6.QtCore\n")
    found = imports("app.engine.fake", src)
    assert ("app.ui", 5) in found and ("app.ui.app", 5) in found
    assert ("app.engine.orders", 6) in found and ("PySide6.QtCore", 7) in found
    assert layer("app.ui.app") == "top" and "top" not in MAY_IMPORT["engine"]


# Test folders that are not about one source package: the fakes (emulator, websocket server),
# this file, and the soak (the whole app for simulated days).
CROSS_CUTTING_TEST_FOLDERS = {"fakes", "layers", "soak"}


def test_test_folders_mirror_the_source_folders() -> None:
    """tests/<x> is about app/<x> (tests/app: app's own modules, tests/db: db/), so a
    maintainer finds a module's tests by its path; tests/engine/alpaca is the engine against
    the Alpaca emulator."""
    sources = {p.name for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()}
    sources |= {"app", "db", "algorithm"}
    folders = {p.name for p in (ROOT / "tests").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    stray = folders - sources - CROSS_CUTTING_TEST_FOLDERS
    assert not stray, f"test folders with no source folder of that name: {sorted(stray)}"
