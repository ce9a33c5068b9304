"""The control channel in-process: a real engine (demo: simulated broker, real SQLite), the
real socket server on a Unix socket, the real client."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.config import load_settings
from app.control.client import ControlClient
from app.control.server import ControlServer, socket_path, start_control
from app.control.service import ControlService
from app.engine.runner import build_engine

ROOT = Path(__file__).resolve().parents[2]


class Changes:
    """An engine listener, as the window's bridge is."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def on_algorithms_changed(self) -> None:
        self.count += 1
        self.event.set()


@pytest.fixture
def engine(short_dir: Path):
    settings = load_settings(overrides={"data_dir": str(short_dir / "d"), "mode": "demo",
                                        "demo.start_date": "2024-06-04"})
    eng, _ = build_engine(settings)
    eng.start()
    yield eng
    eng.close()
    eng.system.close()
    eng.market.close()


def test_socket_is_private_and_answers(engine, short_dir: Path) -> None:
    server = start_control(engine, short_dir / "d")
    assert server is not None
    path = socket_path(short_dir / "d")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with ControlClient.connect(short_dir / "d") as c:
        ping = c.request({"cmd": "ping"})
        assert ping == {"ok": True, "mode": "demo", "running": True}
        algos = c.request({"cmd": "list"})["algorithms"]
        assert [a["ticker"] for a in algos] == ["AAPL", "MSFT", "NVDA"]
        # several requests on one connection, garbage answered, not fatal
        c._f.write(b"not json\n")
        c._f.flush()
        assert json.loads(c._f.readline())["ok"] is False
        assert c.request({"cmd": "rm -rf"}) == {"ok": False, "error": "unknown command 'rm -rf'"}
    engine.close()  # the server closes with the engine and removes its socket
    assert not path.exists()
    assert ControlClient.connect(short_dir / "d") is None


def test_changes_apply_with_the_ui_checks_and_notify_listeners(engine, short_dir: Path,
                                                             caplog) -> None:
    start_control(engine, short_dir / "d")
    changes = Changes()
    engine.add_listener(changes)
    caplog.set_level("INFO")
    with ControlClient.connect(short_dir / "d") as c:
        free = engine.free_capital()
        r = c.request({"cmd": "add", "plugin": "sma_crossover", "ticker": "amd",
                       "capital": free + 1})
        assert r["ok"] is False and "free capital" in r["error"]
        r = c.request({"cmd": "add", "plugin": "nope", "ticker": "AMD", "capital": 100})
        assert r["ok"] is False and "no algorithm plugin named 'nope'" in r["error"]
        r = c.request({"cmd": "add", "plugin": "sma_crossover", "ticker": "BAD TICKER!",
                       "capital": 100})
        assert r["ok"] is False
        r = c.request({"cmd": "add", "plugin": "sma_crossover", "ticker": "AMD",
                       "capital": 100, "params": {"sma_short": "x"}})
        assert r["ok"] is False and "sma_short" in r["error"]
        assert changes.count == 0
        r = c.request({"cmd": "add", "plugin": "sma_crossover", "ticker": "amd",
                       "capital": 1000, "params": {"sma_short": "5"}, "name": "cli AMD"})
        assert r["ok"], r
        new = r["id"]
        assert changes.event.wait(2)
        v = engine.algorithm_view(new)
        assert (v.ticker, v.status, v.params, v.name) == ("AMD", "running", {"sma_short": 5},
                                                          "cli AMD")
        assert engine.system.get_algorithm(new)["status"] == "running"
        before = changes.count
        assert c.request({"cmd": "stop", "id": new})["algorithm"]["status"] == "stopped"
        assert engine.algorithm_view(new).status == "stopped"
        assert c.request({"cmd": "resume", "id": new})["algorithm"]["status"] == "running"
        assert c.request({"cmd": "delete", "id": new}) == {"ok": True, "id": new}
        assert new not in [a.id for a in engine.algorithm_views()]
        assert engine.system.get_algorithm(new)["status"] == "deleted"
        assert c.request({"cmd": "stop", "id": new})["ok"] is False
        assert changes.count >= before + 3
        assert c.request({"cmd": "stop_all"})["ok"]
        assert {a.status for a in engine.algorithm_views()} == {"stopped"}
    logged = [r.getMessage() for r in caplog.records if "from the command line" in r.getMessage()]
    assert any("created algorithm" in m for m in logged)
    assert any("stop all" in m for m in logged)
    assert any("refused" in m and "free capital" in m for m in logged)


def test_stale_socket_replaced_and_long_path_refused(engine, short_dir: Path, tmp_path) -> None:
    path = socket_path(short_dir / "d")
    path.parent.mkdir(mode=0o700, parents=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # a socket file nobody listens on (a process killed with -9)
    assert ControlClient.connect(short_dir / "d") is None
    server = start_control(engine, short_dir / "d")
    with ControlClient.connect(short_dir / "d") as c:
        assert c.request({"cmd": "ping"})["ok"]
    server.close()
    long = tmp_path / ("x" * 120)
    with pytest.raises(OSError, match="longer than"):
        ControlServer(ControlService(engine), socket_path(long)).start()
    assert start_control(engine, long) is None  # logged; the app runs on without it


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0
                    or not os.path.exists("/usr/bin/python3"),
                    reason="needs root (to try as another user) and a system python")
def test_other_users_cannot_connect(engine, short_dir: Path) -> None:
    start_control(engine, short_dir / "d")
    path = socket_path(short_dir / "d")
    os.chmod(short_dir, 0o755)  # even with the parents open, control/ (0700) and the socket
    os.chmod(short_dir / "d", 0o755)
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            f"try:\n  s.connect({str(path)!r})\nexcept PermissionError:\n  sys.exit(3)\n"
            "sys.exit(0)\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code], user=65534, cwd="/", timeout=30)
    assert r.returncode == 3


def test_control_imports_no_qt() -> None:
    code = ("import importlib, sys\n"
            "for m in ['app.control', 'app.control.server', 'app.control.client',\n"
            "          'app.control.service', 'app.control.cli']:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'shiboken6', 'pyqtgraph')))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_malformed_requests_are_refused_and_change_nothing(engine) -> None:
    svc = ControlService(engine)
    before = [(v.id, v.status) for v in engine.algorithm_views()]
    add = {"cmd": "add", "plugin": "sma_crossover", "ticker": "AAPL", "capital": 100}
    for req, says in [
        ({**add, "name": "x" * 61}, "at most 60 characters"),
        ({**add, "name": "two\nlines"}, "control characters"),
        ({**add, "capital": float("nan")}, "positive amount"),
        ({**add, "capital": True}, "positive amount"),
        ({**add, "params": {"sma_short": "abc"}}, "whole number"),
        ({**add, "plugin": "../../etc/passwd"}, "no algorithm plugin"),
        ({**add, "ticker": "aapl; drop"}, "not a ticker symbol"),
        ({"cmd": "stop", "id": True}, "an algorithm id is needed"),
        ({"cmd": "delete", "id": -1}, "no algorithm with id -1"),
        (["list"], "a JSON object"),
    ]:
        ans = svc.handle(req)
        assert ans["ok"] is False and says in ans["error"], (req, ans)
    assert [(v.id, v.status) for v in engine.algorithm_views()] == before
    ok = svc.handle({**add, "name": "n" * 60})
    assert ok["ok"] and ok["algorithm"]["name"] == "n" * 60
