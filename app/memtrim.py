"""Give the C heap's free pages back to the system now and then (glibc only).

The window app frees as much as it allocates (bars, chart arrays, SQLite pages, Qt's
scene-graph nodes), but glibc's malloc keeps freed chunks inside its heaps and arenas unless
they sit at the very top: over hours the free space between live chunks grows and RSS creeps
up although nothing leaks (measured with bench/bench_memory.py --malloc: bytes in use flat,
free bytes in the heap +10-14 MB/h, RSS +17-25 MB/h over 10 minutes; with a trim every
minute RSS is flat). ``malloc_trim(0)`` walks every arena and returns whole free pages with
madvise; it takes a few milliseconds and ctypes releases the GIL while it runs, so a plain
daemon thread does it without touching the GUI thread or a tick.

Elsewhere (musl, macOS) there is no malloc_trim and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0


def _load_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _load_trim()


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
