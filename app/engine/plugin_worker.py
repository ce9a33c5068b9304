"""The plugin worker process: imports plugins, keeps their objects, runs their calls.

Started by ``sandbox.ProcessPluginPool`` (forkserver where available, else spawn). It reads the
system and market DBs read-only (WAL readers), so a seed-style plugin's
``from db import get_data_for_algorithm, get_transactions`` works unchanged; each ``run`` call
brings its own context (minute, cash, position) from the engine. Nothing here writes a DB,
places an order or holds money state: killing this process costs only the calls in it.

Messages from the engine: ``(drops, ops, give_up)`` where ``drops`` are object ids to forget,
``ops`` a list of ``("construct", iid, spec)`` / ``("run", iid, ctx, minute, algo_id)`` (``ctx``
the ``AlgoContext``'s field values in order, ``ctx_fields``: a tuple pickles in a quarter of
the time of the dataclass) and
``give_up`` the ``time.monotonic()`` after which ops not started are skipped (the clock is
system-wide). One reply per op, in order: ``(status, value, where, output, usage)``, usage
being ``_Meter.after``'s (memory grown, memory now, threads started).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import os
import pickle
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import db

if TYPE_CHECKING:
    from datetime import datetime
    from multiprocessing.connection import Connection

    from algorithm._api import AlgoContext
    from db.market import MarketStore
    from db.system import SystemStore, Transaction

FLUSH_SECONDS = 0.02  # replies are sent at least this often while a batch runs
OUTPUT_CAP = 8192  # characters of print()/stderr kept per call; the rest are counted


@dataclass(frozen=True)
class PluginSpec:
    """How a worker re-creates a plugin object: by name (built-in) or file path (user)."""

    name: str
    path: str | None
    builtin: bool
    params: dict[str, Any]
    ticker: str
    capital: float


@dataclass(frozen=True)
class WorkerConfig:
    system_path: str
    market_path: str
    plugin_dirs: tuple[str, ...]
    memory_mb: float = 0.0  # the worker's data memory limit (RLIMIT_DATA); 0: none


# The wire protocol (module docstring), engine -> worker: ops on plugin objects by id (iid).
ConstructOp = tuple[Literal["construct"], int, PluginSpec]
# iid, the context's fields (``ctx_fields``), minute, algo id
RunOp = tuple[Literal["run"], int, tuple[Any, ...], "datetime", int]
WorkerOp = ConstructOp | RunOp
# Worker -> engine: what a plugin's run() returned, as plain values (``_portable``). A value of
# a type the engine does not take travels as ("opaque", its type's name).
Opaque = tuple[Literal["opaque"], str]
Portable = (tuple[Literal["none"]] | tuple[Literal["len"], int] | Opaque
            | tuple[Literal["pair"], bool, str | Opaque, float | Opaque])
ErrorInfo = tuple[str, str]  # what a plugin raised: its type's name, its text
Output = tuple[str, int]  # print()/stderr text captured, characters dropped
Usage = tuple[int, int, int]  # ``_Meter.after``: kB grown during the op, kB now, threads more
OkReply = tuple[Literal["ok"], Portable | None, str, Output, Usage]  # None: a construct
ErrorReply = tuple[Literal["error"], ErrorInfo, str, Output, Usage]  # where: file:line
SkippedReply = tuple[Literal["skipped"], None, str, Output, Usage]
Reply = OkReply | ErrorReply | SkippedReply


_ctx_get: Callable[[Any], tuple[Any, ...]] | None = None


def ctx_fields(ctx: AlgoContext) -> tuple[Any, ...]:
    """``ctx``'s field values in declaration order (``AlgoContext(*fields)`` is ``ctx``)."""
    global _ctx_get
    if _ctx_get is None:
        import dataclasses
        import operator

        _ctx_get = operator.attrgetter(*(f.name for f in dataclasses.fields(ctx)))
    return _ctx_get(ctx)


class _Capture(io.TextIOBase):
    """Stands in for stdout/stderr during a call: keeps the first OUTPUT_CAP characters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: Any) -> int:
        s = str(s)
        room = OUTPUT_CAP - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(room, len(s))
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def flush(self) -> None:
        pass

    def take(self) -> tuple[str, int]:
        text, dropped = "".join(self.parts), self.dropped
        self.parts, self.size, self.dropped = [], 0, 0
        return text, dropped


class _Meter:
    """This process's data memory (what ``RLIMIT_DATA`` counts) and thread count, so the
    engine learns which plugin grows its worker's memory and which one left threads running.

    Memory is a ``pread`` of /proc/self/statm (kept open): 14 µs on a loaded 2-core machine,
    too much after each of a hundred calls a minute, so it is read once a batch, and after
    every op only while the worker grew by more than ``DETAIL_KB`` since the last batch (a
    plugin leaking: then each op's growth is known). Threads: Python's own count (per op,
    0.6 µs; /proc/self/stat took 50 µs)."""

    DETAIL_KB = 4096

    def __init__(self) -> None:
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
        try:
            self.statm: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self.statm = None
        self.data_kb = self.batch_kb = self._data()
        self.threads = threading.active_count()
        self.detail = False

    def _data(self) -> int:
        if self.statm is None:
            return 0
        try:
            return int(os.pread(self.statm, 128, 0).split()[5]) * self.page_kb
        except (OSError, IndexError, ValueError):
            return 0

    def after(self, op: WorkerOp, last: bool) -> Usage:
        """(data memory grown during this ``run`` op in kB, known only in detail; data memory
        now in kB, 0 when not read; threads more than before the op)."""
        threads = threading.active_count()
        more, self.threads = threads - self.threads, threads
        if not (self.detail or last):
            return 0, 0, more
        data = self._data()
        grew = data - self.data_kb if self.detail and op[0] == "run" else 0
        self.data_kb = data
        if last:
            self.detail = data - self.batch_kb > self.DETAIL_KB
            self.batch_kb = data
        return grew, data, more


def _where(e: BaseException) -> str:
    """The innermost frame of a plugin exception, as ``file:line`` (the thread pool in
    sandbox.py says it the same way)."""
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    fr = tb[-1]
    return f"{fr.filename.rsplit('/', 1)[-1]}:{fr.lineno}"


_OK_SHARES = (int, float, bool)


def _portable(raw: Any) -> Portable:
    """What the engine may check of a plugin's result, as plain picklable values. Anything
    else becomes ``("opaque", type name)`` so the engine refuses it by its type's name."""
    if type(raw) in (tuple, list):
        if len(raw) != 2:
            return ("len", len(raw))
        action, shares = raw
        if type(action) is not str:
            action = ("opaque", type(action).__name__)
        if type(shares) in _OK_SHARES:
            return ("pair", type(raw) is list, action, shares)
        import numpy as np

        if not isinstance(shares, np.integer | np.floating):
            shares = ("opaque", type(shares).__name__)
        elif isinstance(shares, np.generic):
            shares = shares.item() if isinstance(shares, np.integer) else np.float64(shares)
        return ("pair", type(raw) is list, action, shares)
    if raw is None:
        return ("none",)
    return ("opaque", type(raw).__name__)


def _plain(value: Portable | None) -> bool:
    """True for a ``_portable`` value made of built-in types only (no pickle test needed:
    a type name from a plugin could be a str subclass with its own ``__reduce__``)."""
    if value is None:  # a construct
        return True
    if value[0] == "pair":
        return type(value[2]) is str and type(value[3]) in _OK_SHARES
    return value[0] == "none" or value[0] == "len"


# Environment variables a plugin has no business reading: the broker keys (APCA_*, the
# AUTOTRADER_ALPACA_* overrides), notification URLs, and anything named like a credential.
_SECRET_ENV = re.compile(r"APCA_|ALPACA|SECRET|TOKEN|PASSW|API_?KEY|KEY_ID|CREDENTIAL|"
                         r"NOTIFY_URLS|AUTH", re.IGNORECASE)


def _contain(memory_mb: float) -> None:
    """What a plugin can reach beyond its own calls, made small:

    - its own process group, so the engine kills whatever it forks along with it (a child
      spinning on after its worker was replaced, found by a hostile test), and a child
      subreaper, so what leaves the group (``setsid``) is still found (``_subreaper``);
    - a data memory limit (``RLIMIT_DATA``): an allocation past it is a ``MemoryError`` in
      that call, not the whole machine swapping or the OOM killer picking the engine;
    - first in line for the OOM killer all the same (``oom_score_adj`` 1000);
    - no secrets in its environment (the config file is the user's own, readable by any
      process of that user: keys there are out of reach only for another user, README)."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _subreaper()
    if memory_mb > 0:
        import resource

        with contextlib.suppress(ValueError, OSError):
            limit = int(memory_mb * 1024 * 1024)
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            # The hard limit too: a plugin cannot raise it again (setrlimit in its code).
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    for name in [n for n in os.environ if _SECRET_ENV.search(n)]:
        del os.environ[name]


def _subreaper() -> None:
    """Linux: orphans among this process's descendants become its children, not init's. A
    plugin's ``setsid()`` child leaves the process group (``killpg`` misses it) and, once its
    parent exits, would belong to no one; as the worker's child it is found by the engine's
    walk of parent links (``sandbox.kill_tree``) before the worker is killed."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _harden() -> None:
    """Ctrl+C belongs to the engine; stray writes to fds 1/2 go nowhere; die with the parent."""
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


class _NoCalendar:
    """The worker never inserts bars, so its market store needs no exchange calendar."""


# The ISO minute strings of ``last_n_bars`` in a worker, cached by epoch second: a dict hit per
# bar instead of a day-prefix lookup, two divisions and a concatenation (about a third of the
# seed read's Python time). Bounded: emptied when full (about 270 kB), and a read of more than
# ``ISO_CACHE_MAX_N`` bars builds its strings as the market DB does, so a long history read
# does not thrash it.
ISO_CACHE_MAX = 2048
ISO_CACHE_MAX_N = 512


class _IsoMinutes(dict[int, str]):
    """Epoch seconds of a whole minute -> ``"YYYY-MM-DDTHH:MM:00Z"``, made on a miss."""

    def __missing__(self, ts: int) -> str:
        from db.timeutil import iso_z

        if len(self) >= ISO_CACHE_MAX:
            self.clear()
        s = self[ts] = iso_z(ts)
        return s


class WorkerProvider(db.StoreProvider):
    """The seed functions' data over read-only connections, plus the numpy fast path.

    ``get_transactions`` reads the system DB once a batch (``new_batch``), not once a call:
    the transactions added since the last batch, of every algorithm, in one query, and which
    algorithms have split events in another; each call then copies its algorithm's rows (new
    dicts in a new list, as ``SystemStore.transactions``). A batch's calls see the
    transactions as they were when it began, as their context (cash, position) is the
    engine's from before the batch. Rows are only ever added (ids grow; nothing updates or
    deletes one), so what was read stays true."""

    def __init__(self, system: SystemStore, market: MarketStore) -> None:
        super().__init__(system, market)
        self._iso = _IsoMinutes()
        self._tickers: set[str] = set()
        self._txs: dict[int, list[Transaction]] = {}  # the algorithms asked about (read-only)
        self._top = -1  # the newest transaction id read (-1: none read yet)
        self._splits: set[int] = set()  # algorithms with split events (seed_view)
        self._fresh = False

    def new_batch(self) -> None:
        """The next ``transactions`` call reads what was added since the last batch."""
        self._fresh = False

    def last_n_closes(self, ticker: str, n: int, before: Any) -> Any:
        import numpy as np

        before_ts = 2**62 if before is None else int(before.timestamp())
        rows = self.market.last_n_rows(ticker, n, before_ts)
        return np.fromiter((r[4] for r in rows), dtype=np.float64, count=len(rows))

    def last_n_bars(self, ticker: str, n: int, before: Any) -> list[dict[str, Any]]:
        """``MarketStore.last_n_bars``'s answer, its timestamps from ``_IsoMinutes``."""
        if not 0 <= n <= ISO_CACHE_MAX_N:
            return super().last_n_bars(ticker, n, before)
        if ticker not in self._tickers:
            from db.market import check_ticker

            check_ticker(ticker)
            if len(self._tickers) < 10_000:
                self._tickers.add(ticker)
        before_ts = 2**62 if before is None else int(before.timestamp())
        iso = self._iso
        return [{"timestamp": iso[ts], "ohlcv": {"o": o, "h": h, "l": lo, "c": c, "v": v}}
                for ts, o, h, lo, c, v in self.market.last_n_rows(ticker, n, before_ts)]

    def transactions(self, algo_id: int) -> list[dict[str, Any]]:
        if not self._fresh:
            self._refresh()
        kept = self._txs.get(algo_id)
        if kept is None:
            kept = self._txs[algo_id] = self.system.seed_transactions_upto(algo_id, self._top)
        rows: list[dict[str, Any]] = [dict(t) for t in kept]  # the plugin's own copies
        if algo_id in self._splits:  # a split shows as a buy or sell (db/corporate.py)
            from db.corporate import seed_view

            return seed_view(self.system.conn, algo_id, rows)
        return rows

    def _refresh(self) -> None:
        if not self._txs:
            self._top = self.system.last_transaction_id()
        else:
            for t in self.system.seed_transactions_after(self._top):
                kept = self._txs.get(t["algo_id"])
                if kept is not None:
                    kept.append(t)
                self._top = t["id"]
        self._splits = self.system.algos_with_splits()
        self._fresh = True


def _provider(cfg: WorkerConfig) -> WorkerProvider:
    from db.market import MarketStore
    from db.system import SystemStore

    return WorkerProvider(SystemStore(cfg.system_path, readonly=True),
                          MarketStore(cfg.market_path, _NoCalendar(), readonly=True))  # type: ignore[arg-type]


def _load_class(spec: PluginSpec) -> type:
    from app.engine import plugins

    if spec.builtin:
        module = importlib.import_module(f"algorithm.{spec.name}")
        info = plugins._info_from_module(spec.name, module, None)
    else:
        info = plugins._load_file(Path(spec.path or ""))
    if info is None or not info.ok:
        raise ImportError(f"plugin {spec.name!r} cannot be loaded: "
                          f"{info.error if info else 'no class Algorithm'}")
    return plugins.make_class(info, spec.params)


def _start(cfg: WorkerConfig) -> WorkerProvider:
    """Serve the seed functions from read-only connections opened now (schema read, first
    pages) so the first minute's calls do not pay for it; plugin folders on the path.
    Returns the provider (the batch loop tells it when a batch begins)."""
    from app.engine import plugins

    plugins.probe_imports = False  # this process is the isolation already
    provider = _provider(cfg)
    db.use_provider(provider)
    with contextlib.suppress(Exception):
        provider.market.warm_up()
        provider.system.warm_up()
    for d in cfg.plugin_dirs:
        if d not in sys.path:
            sys.path.append(d)
    return provider


SetContext = Callable[["AlgoContext | None"], None]


def _call(op: WorkerOp, instances: dict[int, Any], set_context: SetContext) -> Portable | None:
    """Do one op: create a plugin object or run one; the result as a ``_portable`` value."""
    if op[0] == "construct":
        spec: PluginSpec = op[2]
        cls = _load_class(spec)
        instances[op[1]] = cls(spec.ticker, spec.capital)
        return None
    from algorithm._api import AlgoContext

    _, iid, ctx, minute, algo_id = op
    inst = instances.get(iid)
    if inst is None:
        raise LookupError("the plugin object was not created")
    set_context(AlgoContext(*ctx))
    try:
        return _portable(inst.run(minute, algo_id))
    finally:
        set_context(None)


def _reply(op: WorkerOp, instances: dict[int, Any], capture: _Capture,
           set_context: SetContext, meter: _Meter | None = None, last: bool = True) -> Reply:
    """``_call`` with the plugin's output captured and anything it raises (sys.exit()
    included) turned into an error reply; always a reply the pipe can carry."""
    value: Portable | None = None
    error: ErrorInfo | None = None
    where = ""
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    try:
        value = _call(op, instances, set_context)
    except BaseException as e:  # noqa: BLE001 - sys.exit() in a plugin included
        try:
            text = str(e)[:500]
        except Exception:  # noqa: BLE001 - a hostile __str__
            text = "<unprintable>"
        error, where = (type(e).__name__, text), _where(e)
    finally:
        sys.stdout, sys.stderr = real_out, real_err
    usage = meter.after(op, last) if meter is not None else (0, 0, 0)
    reply: Reply = (("ok", value, where, capture.take(), usage) if error is None
                    else ("error", error, where, capture.take(), usage))
    if not (error is None and _plain(value)):
        try:
            pickle.dumps(reply)
        except Exception:  # noqa: BLE001 - whatever a plugin's exception text holds
            reply = ("error", ("TypeError", "result cannot be passed back"), "", ("", 0),
                     usage)
    return reply


def _run_batch(conn: Connection, ops: list[WorkerOp], give_up: float | None,
               instances: dict[int, Any], capture: _Capture, progress: Any,
               set_context: SetContext, meter: _Meter | None = None) -> None:
    """One message's ops in order. Replies go back in small bundles (every few ms and at the
    end): one pipe write per call would cost more than a fast plugin's run(). ``progress``
    tells the engine which call is running and since when."""
    replies: list[Reply] = []
    flushed = time.monotonic()
    for n, op in enumerate(ops):
        last_op = n == len(ops) - 1
        if give_up is not None and time.monotonic() > give_up:
            replies.append(("skipped", None, "", ("", 0), (0, 0, 0)))
            if last_op:
                conn.send(replies)
            continue
        if progress is not None:
            progress[0], progress[1] = float(n), time.monotonic()
        replies.append(_reply(op, instances, capture, set_context, meter, last_op))
        now = time.monotonic()
        if last_op or now - flushed > FLUSH_SECONDS:
            conn.send(replies)
            replies, flushed = [], now


def main(conn: Connection, cfg: WorkerConfig, progress: Any = None) -> None:
    """``progress`` (shared memory, two doubles): the index in its batch of the op running
    and its ``time.monotonic()`` start, so the engine knows which call to blame and time
    without a message per call."""
    _harden()
    _contain(cfg.memory_mb)
    from algorithm._api import set_context

    provider = _start(cfg)
    instances: dict[int, Any] = {}
    capture = _Capture()
    # What is loaded now lives as long as the process: out of the collector's full passes,
    # which otherwise came every ~20 minutes and cost ~20 ms inside a tick.
    gc.collect()
    gc.freeze()
    meter = _Meter()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        drops, ops, give_up = msg
        for iid in drops:
            instances.pop(iid, None)
        provider.new_batch()
        _run_batch(conn, ops, give_up, instances, capture, progress, set_context, meter)
