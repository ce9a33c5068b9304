"""Running many backtests: each in a child process of its own, a few at a time, locally or on
a Dask cluster, with the same function and so the same results.

A plugin can end its process (``os._exit``), crash in native code or hang where the watchdog
cannot interrupt it. Each task therefore runs in a child process; the child sends what
happens as it goes (each fill, and a *beacon*: the minute being run, in shared memory, one
store per call) and its result at the end. A child that dies, or whose beacon stops moving
for ``stall_s``, is killed and its task still gets a result: ``on_death(item, why, messages,
minute)`` builds one from what the child had sent (a partial report), and the other tasks go
on.

``dask``: the address of a ``dask.distributed`` scheduler (``tcp://HOST:8786``) or
``"local"`` (a local cluster on 127.0.0.1); each task then runs in a child process of a Dask
worker, isolated the same way. Everything a task needs travels with it (its spec, the bars
and the plugin's source), so workers need AutoTrader installed but not the data or the plugin
folders.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from ctypes import c_int64
from multiprocessing.connection import Connection, wait
from typing import Any

from app.engine.sandbox import describe_exit, kill_group

logger = logging.getLogger(__name__)

# Before its first call a child is loading data and starting the plugin (a spawned one is
# importing too): it gets this much longer.
STARTUP_GRACE_S = 30.0
# Plugin print()/stderr output shown per run (the rest is counted and said once at its end):
# a plugin printing every minute would otherwise write for hours to the terminal.
OUTPUT_LINES_PER_RUN = 200
OUTPUT_CHARS_PER_RUN = 64 * 1024

Emit = Callable[[Any], None]
TaskFn = Callable[[Any, Emit, Any], Any]     # fn(item, emit, beacon) -> result
DeathFn = Callable[[Any, str, list, int], Any]  # on_death(item, why, messages, minute)


def _context() -> mp.context.BaseContext:
    # fork starts at once with everything imported; a process running other threads (a Dask
    # worker, the app) forks badly, so it uses forkserver (or spawn where there is none).
    methods = mp.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        return mp.get_context("fork")
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        # One forkserver a process (so one per Dask worker), started with what every run
        # needs: each run forks from it warm instead of building the calendar again.
        ctx.set_forkserver_preload(["app.backtest.preload"])
    return ctx


class _OutputBudget:
    """Plugin output a run may show: ``OUTPUT_LINES_PER_RUN`` lines and ``OUTPUT_CHARS_PER_RUN``
    characters over stdout and stderr together; what comes after is counted, not shown."""

    def __init__(self) -> None:
        self.lines, self.chars = OUTPUT_LINES_PER_RUN, OUTPUT_CHARS_PER_RUN
        self.dropped = 0

    def take(self, s: str) -> str:
        if self.lines > 0 and self.chars > 0:
            s = s[:self.chars]
            self.lines -= s.count("\n")
            self.chars -= len(s)
            return s
        self.dropped += s.count("\n")
        return ""


class _CappedStream(io.TextIOBase):
    """A backtest child's stdout/stderr (what a plugin prints). The run's progress bar
    (app/backtest/progress.py) is not plugin output: it writes to ``real`` beneath."""

    def __init__(self, real: Any, budget: _OutputBudget) -> None:
        self.real, self.budget = real, budget

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(self.real.isatty())

    def write(self, s: Any) -> int:
        s = str(s)
        shown = self.budget.take(s)
        if shown:
            self.real.write(shown)
        return len(s)

    def flush(self) -> None:
        self.real.flush()


def _forget_inherited_forkserver() -> None:
    """A child made by fork inherits the parent's forkserver handle (the parent started one
    to probe plugin files) but is not that server's parent: multiprocessing would waitpid()
    it and fail with ECHILD ("No child processes") at the first plugin call of an --exact
    backtest's engine. Forget it; the child starts its own server when it needs one.
    (CPython's ForkServer fields, the same from 3.8 to 3.13; guarded if they change.)"""
    from multiprocessing import forkserver

    fs = getattr(forkserver, "_forkserver", None)
    if fs is None or getattr(fs, "_forkserver_pid", None) is None:
        return
    alive = getattr(fs, "_forkserver_alive_fd", None)
    fs._forkserver_pid = fs._forkserver_address = fs._forkserver_alive_fd = None
    if alive is not None:
        with contextlib.suppress(OSError):
            os.close(alive)  # only this child's copy: the parent's server lives on


def _child(conn: Connection, fn: TaskFn, item: Any, beacon: Any) -> None:
    # Its own process group: the parent kills what a plugin forked along with it, and Ctrl+C
    # in the terminal reaches the parent only (which ends its children).
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _forget_inherited_forkserver()
    from app.engine import plugins

    plugins.probe_imports = False  # this process is the isolation already
    budget = _OutputBudget()
    real_err = sys.stderr
    sys.stdout = _CappedStream(sys.stdout, budget)
    sys.stderr = _CappedStream(real_err, budget)
    outcome: tuple[str, Any]
    try:
        outcome = ("done", fn(item, lambda msg: conn.send(("msg", msg)), beacon))
    except SystemExit as e:  # a plugin's sys.exit outside the guarded calls
        outcome = ("died", f"the plugin called sys.exit({e.code!r})")
    except BaseException as e:  # noqa: BLE001 - reported to the parent as this task's error
        outcome = ("error", f"{type(e).__name__}: {e}")
    # Said before the parent hears the run is over (it ends this process then).
    with contextlib.suppress(Exception):
        if budget.dropped:
            real_err.write(f"({budget.dropped:,} more lines of plugin output were not shown: "
                           f"at most {OUTPUT_LINES_PER_RUN} a run)\n")
        sys.stdout.flush()
        real_err.flush()
    try:
        conn.send(outcome)
    except Exception as e:  # noqa: BLE001 - a result that cannot be pickled
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


class _Running:
    def __init__(self, k: int, proc: Any, conn: Connection, beacon: Any) -> None:
        self.k, self.proc, self.conn, self.beacon = k, proc, conn, beacon
        self.messages: list[Any] = []
        self.result: Any = None
        self.finished = False
        self.last_minute, self.last_move = 0, time.monotonic()


class _Isolated:
    """The state of one ``run_isolated`` call: the tasks to start, the children running and
    the results so far; each step of its loop is one method."""

    def __init__(self, fn: TaskFn, items: list[Any], on_death: DeathFn, workers: int,
                 stall_s: float, on_done: Callable[[int, Any], None] | None) -> None:
        self.fn, self.items, self.on_death = fn, items, on_death
        self.workers, self.stall_s, self.on_done = max(1, workers), stall_s, on_done
        self.ctx = _context()
        self.results: list[Any] = [None] * len(items)
        self.todo = list(range(len(items)))[::-1]
        self.running: dict[Any, _Running] = {}

    def run(self) -> list[Any]:
        try:
            while self.todo or self.running:
                self._start_more()
                ready = wait([*self.running,
                              *(r.proc.sentinel for r in self.running.values())], timeout=0.5)
                now = time.monotonic()
                for obj in ready:
                    r = self._owner(obj)
                    if r is not None:
                        self._read(r)
                self._kill_stalled(now)
        finally:  # Ctrl+C (or a bug here): no child is left running
            for r in list(self.running.values()):
                _end(r.proc)
        return self.results

    def _start_more(self) -> None:
        while self.todo and len(self.running) < self.workers:
            k = self.todo.pop()
            parent, child = self.ctx.Pipe(duplex=False)
            beacon = self.ctx.RawValue(c_int64, 0)
            # Not a daemon: the exact path starts the engine's own plugin processes.
            proc = self.ctx.Process(target=_child, args=(child, self.fn, self.items[k], beacon),
                                    daemon=False, name=f"autotrader-backtest-{k}")
            proc.start()
            child.close()
            self.running[parent] = _Running(k, proc, parent, beacon)

    def _owner(self, obj: Any) -> _Running | None:
        """The running task a ready connection or process sentinel belongs to (None when it
        has finished meanwhile)."""
        r = self.running.get(obj) if isinstance(obj, Connection) else next(
            (x for x in self.running.values() if x.proc.sentinel == obj), None)
        if r is None or r.conn not in self.running:
            return None
        return r

    def _read(self, r: _Running) -> None:
        """Take what the child sent; finish its task when it is done, failed or died."""
        try:
            while r.conn.poll():
                kind, payload = r.conn.recv()
                if kind == "msg":
                    r.messages.append(payload)
                elif kind == "done":
                    del self.running[r.conn]
                    self._finish(r, payload)
                    return
                else:  # "died" (sys.exit) or "error"
                    del self.running[r.conn]
                    why = payload if kind == "died" else f"the run failed: {payload}"
                    self._finish(r, self.on_death(self.items[r.k], why, r.messages,
                                                  r.beacon.value))
                    return
            if not r.proc.is_alive():
                raise EOFError
        except (EOFError, OSError):
            r.proc.join(1)  # its exit code; what its plugin forked goes in _finish
            del self.running[r.conn]
            why = f"the plugin process {describe_exit(r.proc.exitcode)}"
            self._finish(r, self.on_death(self.items[r.k], why, r.messages, r.beacon.value))

    def _kill_stalled(self, now: float) -> None:
        """A child whose beacon has not moved for ``stall_s`` (plus the start-up grace before
        its first call) is killed; its task gets a report of what it did."""
        for r in list(self.running.values()):
            minute = r.beacon.value
            if minute != r.last_minute:
                r.last_minute, r.last_move = minute, now
            elif now - r.last_move > (self.stall_s if minute
                                      else self.stall_s + STARTUP_GRACE_S):
                _end(r.proc)
                del self.running[r.conn]
                self._finish(r, self.on_death(
                    self.items[r.k], f"the plugin process stopped responding for "
                    f"{self.stall_s:g} s and was killed", r.messages, minute))

    def _finish(self, r: _Running, result: Any) -> None:
        self.results[r.k] = result
        r.conn.close()
        _end(r.proc)
        if self.on_done is not None:
            self.on_done(r.k, result)


def _end(proc: Any) -> None:
    """Kill a child (if it still runs) and what its plugin forked (its process group), then
    reap it."""
    kill_group(proc.pid)
    if proc.is_alive():
        proc.kill()
    proc.join(5)


def run_isolated(fn: TaskFn, items: list[Any], on_death: DeathFn, *, workers: int = 1,
                 stall_s: float = 60.0,
                 on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``fn(item, emit, beacon)`` for each item, each in its own child process, at most
    ``workers`` at once; results in the order of ``items``."""
    return _Isolated(fn, items, on_death, workers, stall_s, on_done).run()


# --- Dask -------------------------------------------------------------------------------------

def dask_client(address: str) -> Any:
    """A ``distributed.Client`` for ``address`` (``local``: a cluster on 127.0.0.1)."""
    from app.backtest.errors import BacktestError

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BacktestError("--dask needs the 'distributed' package: pip install "
                            "'autotrader[research]'") from None
    if address == "local":
        cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None, processes=True)
        client = Client(cluster)
        client._autotrader_cluster = cluster  # closed with the client (close_client)
        return client
    try:
        return Client(address, timeout="10s")
    except OSError as e:
        raise BacktestError(f"cannot reach the Dask scheduler at {address}: {e}") from None


def close_client(client: Any) -> None:
    cluster = getattr(client, "_autotrader_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _one_isolated(fn: TaskFn, on_death: DeathFn, stall_s: float, item: Any) -> Any:
    me = mp.current_process()
    if me.daemon:
        # Dask's worker processes are daemonic, and multiprocessing refuses children to a
        # daemon (so none is orphaned at its exit); run_isolated always reaps its child.
        me._config["daemon"] = False  # type: ignore[attr-defined]
    return run_isolated(fn, [item], on_death, workers=1, stall_s=stall_s)[0]


def run_dask(client: Any, fn: TaskFn, items: list[Any], on_death: DeathFn, *,
             stall_s: float = 60.0, on_done: Callable[[int, Any], None] | None = None,
             ) -> list[Any]:
    """The same tasks on a Dask cluster, each isolated in a child of its worker."""
    from functools import partial

    from distributed import as_completed

    task = partial(_one_isolated, fn, on_death, stall_s)
    futures = client.map(task, items, pure=False)
    index = {f.key: k for k, f in enumerate(futures)}
    results: list[Any] = [None] * len(items)
    for fut in as_completed(futures):
        k = index[fut.key]
        try:
            results[k] = fut.result()
        except Exception as e:  # noqa: BLE001 - a worker lost: this task fails, others go on
            results[k] = on_death(items[k], f"the Dask worker failed: {type(e).__name__}: {e}",
                                  [], 0)
        if on_done is not None:
            on_done(k, results[k])
    return results
