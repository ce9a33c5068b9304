"""Give the C heap's free pages back to the system now and then (glibc only).

The window app frees as much as it allocates (bars, chart arrays, SQLite pages, Qt's
scene-graph nodes), but glibc's malloc keeps freed chunks inside its heaps and arenas unless
they sit at the very top: over hours the free space between live chunks grows and RSS creeps
up although nothing leaks (measured with bench/bench_memory.py --malloc: bytes in use flat,
free bytes in the heap +10-14 MB/h, RSS +17-25 MB/h over 10 minutes; with a trim every
minute RSS is flat). ``malloc_trim(0)`` walks every arena and returns whole free pages with
madvise; it takes a few milliseconds and ctypes releases the GIL while it runs, so a plain
daemon thread does it without touching the GUI thread or a tick.

Threads: glibc gives each thread that allocates its own arena (up to 8 per core). The engine's
threads (feed, broker jobs, plugin pool, worker, scheduler, helpers started per broker call)
each fill and free their own, and the free space left inside many half-used arenas grew
+2-3 MB/h on the lock screen (bench_memory --malloc: free in heap +2.96 MB/h, RSS +6.8 MB/h;
with two arenas free +0.33 MB/h, RSS +4.45 MB/h over 9 minutes, the rest the engine's own
allocations). :func:`limit_arenas` caps them at two, as MALLOC_ARENA_MAX=2 would; it must run
before the process's threads start (glibc fixes its limit when the ninth arena is made, and an
arena a thread already has stays its own).

Elsewhere (musl, macOS) there is no malloc_trim and this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
DEFAULT_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def _load_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols, libc's among them
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _load_trim()


def limit_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (call it first thing, before any thread starts);
    True if the C library took it. An environment that sets MALLOC_ARENA_MAX keeps its own."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        # The process's own symbols (libc's among them): no find_library, which runs
        # ldconfig in a subprocess, on the way to the first frame.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, int(arenas)))


def available() -> bool:
    """Whether this C library has malloc_trim (glibc)."""
    return _TRIM is not None


def release_free_heap() -> bool:
    """Return the free pages of every malloc arena to the system; True if any went back."""
    return bool(_TRIM(0)) if _TRIM is not None else False


class HeapTrimmer:
    """A daemon thread that calls :func:`release_free_heap` every ``interval_s`` seconds."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interval_s = float(interval_s)
        self.runs = 0
        self.longest_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heap-trim", daemon=True)

    def start(self) -> HeapTrimmer:
        if available():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            t0 = time.monotonic()
            try:
                release_free_heap()
            except Exception:  # noqa: BLE001 - never let housekeeping take the app down
                logger.exception("malloc_trim failed; heap trimming stops")
                return
            self.runs += 1
            self.longest_s = max(self.longest_s, time.monotonic() - t0)


_started: HeapTrimmer | None = None


def start_heap_trimmer(interval_s: float = DEFAULT_INTERVAL_S) -> HeapTrimmer:
    """Start the process's one trimmer (idempotent: a second call returns the first)."""
    global _started
    if _started is None:
        _started = HeapTrimmer(interval_s).start()
    return _started
