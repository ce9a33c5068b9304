"""A crash-test seam: pause at a named point of the order path so a test can SIGKILL there.

Set ``AUTOTRADER_TEST_PAUSE_AT`` to a point name (``before_submit``, ``after_broker_fill``)
and the process prints ``PAUSE <name>`` on stderr and sleeps ``AUTOTRADER_TEST_PAUSE_SECONDS``
(default 30) the first time it reaches that point. Unset, it costs one dict lookup.
"""

from __future__ import annotations

import logging
import os
import sys
import time

logger = logging.getLogger(__name__)

_done: set[str] = set()


def pause_point(name: str) -> None:
    if os.environ.get("AUTOTRADER_TEST_PAUSE_AT") != name or name in _done:
        return
    _done.add(name)
    seconds = float(os.environ.get("AUTOTRADER_TEST_PAUSE_SECONDS", "30"))
    logger.warning("test hook: pausing %.0f s at %s", seconds, name)
    print(f"PAUSE {name}", file=sys.stderr, flush=True)
    time.sleep(seconds)
