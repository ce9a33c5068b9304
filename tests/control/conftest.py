"""Control-channel fixtures: short data folders (a Unix socket path holds ~100 bytes) and the
headless demo app as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="atc"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def env_for(base: Path, data: str = "d", **extra: str) -> dict[str, str]:
    """The environment of an app child process living in ``base`` (its data folder
    ``base/data``; short by default: the control socket's path has a length limit), with no
    AUTOTRADER_/APCA_ variable of the test run's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    env.update({
        "HOME": str(base / "home"),
        "XDG_CONFIG_HOME": str(base / "home" / ".config"),
        "AUTOTRADER_DATA_DIR": str(base / data),
        "AUTOTRADER_LOG_DIR": str(base / "log"),
        "AUTOTRADER_DEMO_START_DATE": "2024-06-04",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def cli(base: Path, *args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT,
                          env=env_for(base, **extra), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start_app(base: Path, *args: str, **extra: str) -> subprocess.Popen:
    """``autotrader run --headless`` (the demo) until its control socket answers."""
    log = open(base / "app.out", "w")  # noqa: SIM115 - closed by the process's end
    p = subprocess.Popen([sys.executable, "main.py", "run", "--headless", *args], cwd=ROOT,
                         env=env_for(base, **extra), stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    sock = base / "d" / "control" / "autotrader.sock"

    def ready() -> bool:
        if p.poll() is not None:
            raise AssertionError("the app ended at start:\n"
                                 + (base / "app.out").read_text()[-3000:])
        return sock.exists() and "AutoTrader DEMO" in (base / "app.out").read_text()

    try:
        wait_until(ready, 60, what="the app's control socket", interval=0.2)
    except AssertionError:
        p.kill()
        raise
    return p


def stop_app(p: subprocess.Popen) -> int:
    if p.poll() is None:
        p.terminate()
    return p.wait(timeout=30)
