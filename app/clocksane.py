"""Is the wall clock believable? A Raspberry Pi 4 has no clock of its own: until the network
time arrives it reads the last shutdown's time or 1970. Trading on such a clock would tick the
wrong minutes (and the calendar has no sessions for 1970), so the scheduler waits here, saying
why once, until the clock reads at least this release's date.

Only the wall clock is checked: simulated and manual clocks (demo, backtests, tests) run in
whatever past they were given. Qt-free; imports only base helpers.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from app.clock import WallClock

logger = logging.getLogger(__name__)

# The day this release was made: a wall clock before it cannot be right. Move it forward with
# each release (tests/ops/test_clocksane.py checks it is not in the future).
RELEASE_DATE = datetime(2026, 12, 1, tzinfo=UTC)
POLL_SECONDS = 10.0


def clock_problem(now: datetime, not_before: datetime = RELEASE_DATE) -> str | None:
    """Why ``now`` cannot be the real time, or None when it can."""
    if now < not_before:
        return (f"the clock reads {now:%Y-%m-%d %H:%M} UTC, before this release "
                f"({not_before:%Y-%m-%d}): it has not been set yet (no network time?)")
    return None


def wait_for_sane_clock(clock: object, stop: threading.Event, *,
                        not_before: datetime = RELEASE_DATE,
                        poll: float | None = None) -> bool:
    """Return True at once for a clock other than the wall clock, or when the wall clock is
    believable; else log one warning and wait (checking every ``poll`` s) until it is. False
    when ``stop`` was set first."""
    if not isinstance(clock, WallClock):
        return True
    poll = POLL_SECONDS if poll is None else poll
    warned = False
    while True:
        problem = clock_problem(clock.now(), not_before)
        if problem is None:
            if warned:
                logger.warning("the clock is set now (%s UTC): trading resumes",
                               f"{clock.now():%Y-%m-%d %H:%M}")
            return True
        if not warned:
            logger.warning("not trading: %s. Waiting for the clock to be set "
                           "(timedatectl status; sudo timedatectl set-ntp true)", problem)
            warned = True
        if stop.wait(poll):
            return False


_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised (STA_UNSYNC)


def kernel_clock_synchronized() -> bool | None:
    """Whether the kernel's clock is kept in sync by a time service (systemd-timesyncd,
    chrony, ntpd), None where this cannot be asked (not Linux). A read-only adjtimex(2)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: only read
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR
