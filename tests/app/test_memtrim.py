"""The heap trimmer gives freed C-heap pages back to the system (glibc), in a real process.

The scene: many malloc'd blocks (bytes objects above pymalloc's 512-byte limit go to malloc),
then all freed but every 64th, which pins the heap so glibc cannot shrink it by itself. RSS
stays high until ``release_free_heap`` runs; then most of it goes back.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from app import memtrim
from tests.waiting import nothing_before, wait_until

pytestmark = pytest.mark.skipif(not memtrim.available(), reason="malloc_trim is glibc's")

SCENE = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, os.getcwd())
    from app.memtrim import release_free_heap
    PAGE = os.sysconf("SC_PAGE_SIZE")
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    base = rss_mb()
    blocks = [bytes(4000) for _ in range(30_000)]          # ~120 MB through malloc
    keep = blocks[::64]
    del blocks
    before = rss_mb()
    released = release_free_heap()
    after = rss_mb()
    print(base, before, after, released, len(keep))
""")


def test_release_free_heap_returns_freed_pages_to_the_system():
    out = subprocess.run([sys.executable, "-c", SCENE], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    base, before, after = (float(x) for x in out[:3])
    assert out[3] == "True"
    assert before - base > 60, "the freed blocks should still be resident before the trim"
    assert before - after > 50, f"RSS {before:.0f} -> {after:.0f} MB: the trim gave little back"


def test_trimmer_thread_runs_on_its_interval_and_stops():
    t = memtrim.HeapTrimmer(interval_s=0.05).start()
    wait_until(lambda: t.runs >= 2, timeout=10, what="two trims")
    t.stop()
    runs = t.runs
    # The marker: its thread has ended, so no later run can come unseen (a fixed sleep
    # instead passed whenever the machine was too slow for the next run to come).
    nothing_before(lambda: not t._thread.is_alive(), lambda: t.runs != runs,
                   what="a stopped trimmer ran again")


def test_start_heap_trimmer_is_one_per_process():
    first = memtrim.start_heap_trimmer(interval_s=3600)
    assert memtrim.start_heap_trimmer(interval_s=1) is first
    assert first.interval_s == 3600
