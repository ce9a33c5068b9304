"""One way to keep a list of listeners and call them.

``Listeners[T]`` holds the registered items (callables, or objects with ``on_*`` methods).
The items are kept in a tuple that is replaced on every change, so adding or removing from
any thread while another thread is calling them is safe and calling needs no copy. A
listener that raises is logged with ``what`` and its name; the others are still called and
the caller never sees the exception (a listener's problem never breaks the feed, broker or
engine step that announced the event).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Generic, ParamSpec, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")


def _name(item: object) -> str:
    return getattr(item, "__qualname__", None) or type(item).__name__


class Listeners(Generic[T]):
    """Registered listeners of one kind (``what`` names them in the log)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: tuple[T, ...] = ()
        self._change = threading.Lock()  # two adders never lose one another's item

    def add(self, item: T) -> None:
        with self._change:
            self._items = (*self._items, item)

    def discard(self, item: T) -> None:
        with self._change:
            self._items = tuple(i for i in self._items if i is not item)

    def clear(self) -> None:
        with self._change:
            self._items = ()

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def each(self, call: Callable[[T], object], event: str = "") -> None:
        """``call(item)`` for every item; an exception is logged and the next one called."""
        for item in self._items:
            try:
                call(item)
            except Exception:
                logger.exception("%s %s%s failed", self.what, _name(item),
                                 f".{event}" if event else "")


class Callbacks(Listeners[Callable[P, object]]):
    """Listeners that are plain callables, all called with the same arguments."""

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for fn in self._items:
            try:
                fn(*args, **kwargs)
            except Exception:
                logger.exception("%s %s failed", self.what, _name(fn))
