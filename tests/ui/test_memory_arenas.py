"""Issue 19: the window's threads share two malloc arenas once ``memtrim.limit_arenas`` ran.

Each case runs in a fresh interpreter (the arena limit is per process and fixed early): eight
threads allocate at the same time and stay alive, then glibc's ``malloc_stats`` lists the
arenas on stderr. Without the limit each thread gets its own (up to 8 per core); with it, two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import memtrim

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not memtrim.available(), reason="arenas are glibc's")

CHILD = r"""
import ctypes, sys, threading
from app import memtrim
if sys.argv[1] == "limit":
    assert memtrim.limit_arenas(2)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
ready, done = threading.Barrier(9), threading.Event()
def work():
    keep = [libc.malloc(1000) for _ in range(100)]  # this thread's own allocations
    ready.wait()
    done.wait()
    del keep
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
ready.wait()  # all eight hold memory at once
sys.stderr.flush()
libc.malloc_stats()
done.set()
for t in threads:
    t.join()
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    return sum(1 for line in out.stderr.splitlines() if line.startswith("Arena "))


def test_threads_share_two_arenas_after_limit_arenas() -> None:
    assert _arenas("free") > 2  # the default: a thread, an arena (checked: 9 here)
    assert _arenas("limit") <= 2


def test_an_environment_limit_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memtrim.limit_arenas(2) is False
