"""Running untrusted plugin calls with a time limit.

Live engines run plugin code in a few worker processes (``ProcessPluginPool``): a plugin that
exits, crashes, hangs or spins costs only the calls in its process, which is killed and
replaced. ``PluginPool`` (threads, below) is the fallback where a worker process cannot read
the engine's data (in-memory DBs, a custom data provider).

In the thread pool a thread cannot be killed, so a call that overruns is *abandoned*: its result is dropped, its
worker thread leaves the pool when (if ever) the call returns, and a fresh worker takes its
place so the other plugins are not delayed. Workers are daemon threads so a hung plugin never
blocks interpreter shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

from app.engine.plugin_worker import _where, ctx_fields

if TYPE_CHECKING:
    from datetime import datetime

    from algorithm._api import AlgoContext
    from app.engine.plugin_worker import PluginSpec, Portable, Reply, WorkerConfig, WorkerOp

# What a queued process call asks of its plugin object (the object's id is added when sent).
CallOp = tuple[Literal["construct"]] | tuple[Literal["run"], "AlgoContext", "datetime", int]

logger = logging.getLogger(__name__)


class _Done:
    """``threading.Event``'s set/is_set/wait for a call, at a fraction of its cost: a tick
    makes one per algorithm and almost never waits on one (the Event is made on a wait)."""

    __slots__ = ("_flag", "_event")
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None

    def set(self) -> None:
        self._flag = True
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        with _Done._lock:
            if self._event is None:
                self._event = threading.Event()
        if self._flag:  # set() ran before the Event existed
            return True
        return self._event.wait(timeout) or self._flag


@dataclass(eq=False)
class Call:
    key: Any
    fn: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    where: str = ""
    timed_out: bool = False
    skipped: bool = False
    started: float | None = None
    finished: float | None = None
    done: _Done = field(default_factory=_Done)
    _report: queue.SimpleQueue[Call] | None = None
    # process pool: the worker died (exit, crash, kill after the time limit) during this call
    died: str | None = None
    deaths: int = 0  # worker deaths in a row charged to this call's key
    op: CallOp | None = None
    instance: Any = None

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started


class _Worker(threading.Thread):
    def __init__(self, pool: ThreadPluginPool, n: int) -> None:
        super().__init__(name=f"plugin-{n}", daemon=True)
        self.pool = pool
        self.abandoned = False

    def run(self) -> None:
        q = self.pool._tasks
        while True:
            call = q.get()
            if call is None:
                return
            with self.pool._lock:
                if call.skipped:
                    continue
                call.started = time.monotonic()
                self.pool._running[call] = self
            try:
                call.result = call.fn()
            except BaseException as e:  # noqa: BLE001 - a plugin may raise anything
                call.error = e
                call.where = _where(e)
            call.finished = time.monotonic()
            with self.pool._lock:
                self.pool._running.pop(call, None)
            call.done.set()
            if call._report is not None:
                call._report.put(call)
            if self.abandoned:
                logger.info("abandoned worker %s finished its late call and exits", self.name)
                return


class ThreadPluginPool:
    """A small pool of daemon threads; ``run_all`` waits for every call or its time limit."""

    def __init__(self, workers: int = 4) -> None:
        self.size = max(1, workers)
        self._tasks: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[Call, _Worker] = {}
        self._workers: list[_Worker] = []
        self._n = 0
        self._closed = False

    def _spawn(self) -> None:
        self._n += 1
        w = _Worker(self, self._n)
        self._workers.append(w)
        w.start()

    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if w.is_alive() and not w.abandoned]
        while len(self._workers) < self.size:
            self._spawn()

    def run_all(self, calls: list[Call], timeout: float,
                budget: float | None = None) -> list[Call]:
        """Run ``calls``; each may take ``timeout`` seconds from its own start. Returns them
        with ``result``/``error`` set, ``timed_out`` for the ones abandoned, or ``skipped``
        for those not started within ``budget`` seconds (slow plugins ate the time)."""
        if self._closed:
            raise RuntimeError("plugin pool is closed")
        if not calls:
            return calls
        report: queue.SimpleQueue[Call] = queue.SimpleQueue()
        with self._lock:
            self._ensure_workers()
        for c in calls:
            c._report = report
            self._tasks.put(c)
        pending = set(calls)
        give_up = None if budget is None else time.monotonic() + budget
        while pending:
            now = time.monotonic()
            if give_up is not None and now >= give_up:
                with self._lock:
                    for c in list(pending):
                        if c.started is None:
                            c.skipped = True
                            pending.discard(c)
                give_up = None
                if not pending:
                    break
            with self._lock:
                started = [(c, w) for c, w in self._running.items() if c in pending]
            overdue = [(c, w) for c, w in started if now - (c.started or now) > timeout]
            for c, w in overdue:
                if c.done.is_set():
                    continue
                c.timed_out = True
                w.abandoned = True
                pending.discard(c)
                logger.warning("plugin call %s overran %.1f s; abandoning its thread", c.key,
                               timeout)
                with self._lock:
                    self._ensure_workers()
            deadlines = [(c.started or now) + timeout for c, _ in started if c in pending]
            wait = max(0.0, min(deadlines) - now) + 0.001 if deadlines else 0.05
            if give_up is not None:
                wait = min(wait, max(0.0, give_up - now) + 0.001)
            try:
                c = report.get(timeout=wait)
            except queue.Empty:
                continue
            pending.discard(c)
            while True:  # drain what else finished meanwhile
                try:
                    pending.discard(report.get_nowait())
                except queue.Empty:
                    break
        return calls

    def call(self, fn: Callable[[], Any], timeout: float, key: Any = None) -> Call:
        return self.run_all([Call(key, fn)], timeout)[0]

    def close(self) -> None:
        """Let idle workers exit; hung ones are daemons and are left behind."""
        self._closed = True
        with self._lock:
            live = [w for w in self._workers if w.is_alive() and not w.abandoned]
        for _ in live:
            self._tasks.put(None)


# --- worker processes -------------------------------------------------------------------------

MAX_DEATHS_IN_A_ROW = 3   # an algorithm whose calls kill their worker this often is stopped
# The data memory a worker may allocate (MB; 0: no limit); ``[engine] plugin_memory_mb``,
# set by the runner before the first worker starts (set_plugin_memory_mb).
_memory_mb = 1024.0


def set_plugin_memory_mb(mb: float) -> None:
    global _memory_mb
    _memory_mb = float(mb)

STARTUP_SECONDS = 30.0    # a new worker this slow to start is replaced
# Worker health, looked at before each batch (``ProcessPluginPool._health``):
RECYCLE_SHARE = 0.6       # data memory past this share of plugin_memory_mb: recycle
RECYCLE_MB_NO_LIMIT = 2048.0  # the same without a limit
SPIN_IDLE_SECONDS = 1.0   # idle at least this long before its CPU use while idle is judged
SPIN_SHARE = 0.25         # CPU share while idle above which a thread is left spinning
OUTPUT_LINES_PER_MINUTE = 20  # plugin print()/stderr lines logged per plugin per minute


class RemoteError(Exception):
    """An exception raised by plugin code in a worker; its type name is the plugin's."""

    _classes: dict[str, type[RemoteError]] = {}

    @classmethod
    def make(cls, name: str, text: str) -> RemoteError:
        klass = cls._classes.get(name)
        if klass is None:
            klass = cast("type[RemoteError]",  # type() of a subclass of cls
                         type(name if name.isidentifier() else "Exception", (cls,), {}))
            cls._classes[name] = klass
        return klass(text)


def _opaque(name: str) -> Any:
    """An object whose type has the plugin's type name (what a refusal message shows)."""
    return type(name if name.isidentifier() else "object", (), {})()


def _decode(value: Portable | None) -> Any:
    """A plugin's result as the engine checks it (the worker's ``_portable`` undone; None is
    a construct's answer, never a run's)."""
    if value is None or value[0] == "none":
        return None
    if value[0] == "len":
        return (None,) * value[1]
    if value[0] == "opaque":
        return _opaque(value[1])
    _, is_list, action, shares = value
    act = _opaque(action[1]) if type(action) is tuple else action
    num = _opaque(shares[1]) if type(shares) is tuple else shares
    return [act, num] if is_list else (act, num)


@dataclass(eq=False)
class RemoteInstance:
    """The engine's handle on a plugin object living in a worker process."""

    spec: PluginSpec
    slot: int
    iid: int
    gen: int = -1  # the slot generation it was created in; another one means: re-create
    deaths: int = 0  # calls in a row that ended with its worker dead or stopped
    key: Any = None  # the engine's name for it (the algorithm id), for messages
    grew_kb: int = 0  # data memory its run() calls added to its worker since it started
    threads: int = 0  # threads its calls started and left running
    recycled: list[str] = field(default_factory=list)  # why its worker was recycled for it


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.gen = 0
        self.proc: Any = None
        self.conn: Any = None
        self.ready = False
        self.eof = False
        self.progress: Any = None
        self.sent_at = 0.0
        self.batch_len = 0
        self.started_at = 0.0
        self.instances = 0
        self.drops: list[int] = []
        self.members: weakref.WeakSet[RemoteInstance] = weakref.WeakSet()
        self.quarantine = False  # holds plugins moved out of a shared worker (health)
        self.data_kb = 0  # the worker's data memory after its last call
        self.idle_since: float | None = None  # its last batch ended then
        self.idle_cpu = 0.0  # its CPU seconds then


def describe_exit(code: int | None) -> str:
    """How a plugin process ended, for messages: 'exited with code 1', 'was killed by ...'."""
    if code is None:
        return "stopped responding"
    if code < 0:
        import signal as _signal

        try:
            name = _signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group ``pid`` made for itself (a plugin process: it and what its
    plugin forked). Nothing happens when ``pid`` is in another group. When ``pid`` has ended
    already (reaped by us or by the forkserver), its group is killed only if members are left:
    while they live the group id cannot be anyone else's."""
    import os
    import signal as _signal

    if pid is None or pid <= 1 or pid == os.getpgrp():
        return
    try:
        if os.getpgid(pid) != pid:
            return
    except ProcessLookupError:
        if not _group_members(pid):
            return
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.killpg(pid, _signal.SIGKILL)


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...);
    raises OSError or IndexError when the process is gone or the file is unreadable."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def _all_stats() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, ``_stat_fields``) of every process that can be read now (from /proc)."""
    import os

    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names:
        if not name.isdigit():
            continue
        try:
            yield int(name), _stat_fields(int(name))
        except (OSError, IndexError):
            continue


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (read from /proc)."""
    out: dict[int, int] = {}
    for pid, fields in _all_stats():
        with contextlib.suppress(IndexError, ValueError):
            out[pid] = int(fields[1])
    return out


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` by parent links."""
    children: dict[int, list[int]] = {}
    for p, pp in _parents().items():
        children.setdefault(pp, []).append(p)
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def kill_tree(pid: int | None) -> None:
    """SIGKILL a live plugin process's descendants, then its process group (``kill_group``).
    The descendants are found by parent links (a worker is a child subreaper: a ``setsid``
    grandchild whose parent exited is its child) and stopped first (SIGSTOP), the walk
    repeated until it finds no new one, so none forks away meanwhile. Only for a process
    not reaped yet (its pid cannot be anyone else's)."""
    import os

    if pid is None or pid <= 1 or pid == os.getpid():
        return
    kill_descendants(pid)
    kill_group(pid)


def kill_descendants(pid: int) -> None:
    """``kill_tree`` without the group kill: every process below the live ``pid``."""
    import os
    import signal as _signal

    seen: set[int] = set()
    for _ in range(20):
        new = descendants(pid) - seen
        if not new:
            break
        for k in new:
            with contextlib.suppress(OSError):
                os.kill(k, _signal.SIGSTOP)
        seen |= new
    for k in seen:
        with contextlib.suppress(OSError):
            os.kill(k, _signal.SIGKILL)


def _cpu_seconds(proc: Any) -> float:
    """User + system CPU seconds of a live process (0.0 when it cannot be read)."""
    import os

    try:
        fields = _stat_fields(proc.pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, AttributeError):
        return 0.0


def _group_members(pgid: int) -> bool:
    """Whether a process of process group ``pgid`` exists (read from /proc)."""
    want = str(pgid).encode()
    return any(len(fields) > 2 and fields[2] == want for _, fields in _all_stats())


class _OutputLimiter:
    """Plugin output to the log, at most OUTPUT_LINES_PER_MINUTE lines per plugin a minute."""

    def __init__(self) -> None:
        self._window: dict[str, tuple[float, int, int]] = {}

    def log(self, name: str, text: str, dropped: int) -> None:
        lines = [ln[:300] for ln in text.splitlines() if ln.strip()]
        if not lines and not dropped:
            return
        now = time.monotonic()
        start, used, suppressed = self._window.get(name, (now, 0, 0))
        if now - start >= 60.0:
            if suppressed:
                logging.getLogger(f"plugin.{name}").warning(
                    "%d more output lines of plugin %s were not logged (limit %d a minute)",
                    suppressed, name, OUTPUT_LINES_PER_MINUTE)
            start, used, suppressed = now, 0, 0
        plog = logging.getLogger(f"plugin.{name}")
        room = max(0, OUTPUT_LINES_PER_MINUTE - used)
        for ln in lines[:room]:
            plog.info("%s", ln)
        suppressed += max(0, len(lines) - room) + (1 if dropped else 0)
        self._window[name] = (start, used + min(room, len(lines)), suppressed)


class ProcessPluginPool:
    """Plugin objects live in ``size`` worker processes; each object stays in one worker.

    The interface is the thread pool's: ``construct`` gives a handle (``RemoteInstance``),
    ``make_call`` a ``Call`` for one ``run``, ``run_all`` runs a batch with the time limit and
    the minute's budget. A worker that exits, crashes or overruns the limit is killed and
    replaced; the call it was running gets ``died`` (the reason), the others queued on it run
    in the replacement (their plugin objects re-created first).
    """

    def __init__(self, workers: int, config: WorkerConfig) -> None:
        import multiprocessing as mp

        self.size = max(1, workers)
        self.config = config
        methods = mp.get_all_start_methods()
        self._ctx: Any = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if self._ctx.get_start_method() == "forkserver":
            self._ctx.set_forkserver_preload(["app.engine.plugin_worker"])
        self._slots = [_Slot(i) for i in range(self.size)]
        self._lock = threading.RLock()
        self._next_iid = 0
        self._output = _OutputLimiter()
        self._closed = False

    # -- processes ----------------------------------------------------------------------
    def _start(self, slot: _Slot) -> None:
        from app.engine import plugin_worker

        parent, child = self._ctx.Pipe()
        slot.progress = self._ctx.Array("d", 2, lock=False)
        proc = self._ctx.Process(target=plugin_worker.main,
                                 args=(child, self.config, slot.progress),
                                 name=f"autotrader-plugin-{slot.index}", daemon=True)
        proc.start()
        child.close()
        slot.proc, slot.conn, slot.ready, slot.eof = proc, parent, False, False
        slot.started_at = time.monotonic()
        slot.gen += 1  # objects it held are re-created on their next call (instances stay)
        slot.drops.clear()
        slot.data_kb, slot.idle_since = 0, None
        logger.info("plugin worker %d started (pid %s)", slot.index, proc.pid)

    def _kill(self, slot: _Slot) -> int | None:
        proc = slot.proc
        if proc is None:
            return None
        if proc.is_alive():  # the worker and whatever its plugins forked (setsid too)
            kill_tree(proc.pid)
        else:
            kill_group(proc.pid)
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=5)
        code: int | None = proc.exitcode
        try:
            slot.conn.close()
        except OSError:
            pass
        slot.proc = slot.conn = None
        slot.ready = False
        return code

    def _alive(self, slot: _Slot) -> bool:
        return slot.proc is not None and slot.proc.is_alive()

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self._slots if s.proc is not None]

    # -- the engine's interface ---------------------------------------------------------
    def construct(self, spec: Any, timeout: float, key: Any = None) -> Call:
        """Create the plugin object described by ``spec`` (a ``PluginSpec``) in the least
        loaded worker; the call's ``result`` is its handle (``RemoteInstance``)."""
        with self._lock:
            for idle in self._slots:  # every worker starts now, side by side, not one by one
                if idle.proc is None and not self._closed and not idle.quarantine:
                    self._start(idle)
            slot = min((s for s in self._slots if not s.quarantine),
                       key=lambda s: s.instances)
            self._next_iid += 1
            inst = RemoteInstance(spec, slot.index, self._next_iid,
                                  key=key if key is not None else spec.name)
            slot.instances += 1
            slot.members.add(inst)
        call = Call(key if key is not None else spec.name, lambda: None)
        call.op = ("construct",)
        call.instance = inst
        self.run_all([call], timeout)
        if call.error is None and not call.timed_out and call.died is None \
                and not call.skipped:
            call.result = inst
            weakref.finalize(inst, self._forget, inst.slot, inst.iid)
        else:  # a failed object holds no place in its worker (one that half-exists is dropped)
            self._forget(inst.slot, inst.iid)
        return call

    def make_call(self, key: Any, instance: RemoteInstance, ctx: AlgoContext,
                  minute: datetime, algo_id: int) -> Call:
        call = Call(key, lambda: None)
        call.op = ("run", ctx, minute, algo_id)
        call.instance = instance
        return call

    def _forget(self, slot_index: int, iid: int) -> None:
        # A finaliser may run on any thread: a list append is atomic (the count is only the
        # balance of the next construct). Ids are never reused, so dropping one a restarted
        # worker never had is harmless.
        slot = self._slots[slot_index]
        slot.drops.append(iid)
        slot.instances = max(0, slot.instances - 1)

    def run_all(self, calls: list[Call], timeout: float,
                budget: float | None = None) -> list[Call]:
        if self._closed:
            raise RuntimeError("plugin pool is closed")
        if not calls:
            return calls
        with self._lock:
            try:
                self._run_all(calls, timeout, budget)
            finally:
                for c in calls:
                    c.done.set()
        return calls

    def _ops_for(self, slot: _Slot, call: Call) -> list[Op]:
        """(call, op, is_rebuild) for ``call`` on ``slot``: a run whose object was lost with
        an earlier worker is preceded by its re-creation."""
        inst: RemoteInstance = call.instance
        assert call.op is not None  # set when the call was queued
        if call.op[0] == "construct":
            return [(call, ("construct", inst.iid, inst.spec), False)]
        out: list[Op] = []
        if inst.gen != slot.gen:
            out.append((call, ("construct", inst.iid, inst.spec), True))
        _, ctx, minute, algo_id = call.op
        out.append((call, ("run", inst.iid, ctx_fields(ctx), minute, algo_id), False))
        return out

    def _run_all(self, calls: list[Call], timeout: float, budget: float | None) -> None:
        _Batch(self, timeout, budget).run(calls)

    def _drain(self, slot: _Slot, inflight: dict[int, list[Op]], last: dict[int, float]) -> None:
        idx = slot.index
        while idx in inflight:
            try:
                if not slot.conn.poll():
                    return
                msg = slot.conn.recv()
            except (EOFError, OSError):
                slot.eof = True
                return
            last[idx] = time.monotonic()
            if msg[0] == "ready":
                slot.ready = True
                continue
            for reply in msg:
                if idx in inflight:
                    self._apply(slot, inflight, reply)

    def _apply(self, slot: _Slot, inflight: dict[int, list[Op]], reply: Reply) -> None:
        idx = slot.index
        _, _, where, (text, dropped), (grew, data_kb, threads) = reply
        call, op, rebuild = inflight[idx].pop(0)
        if not inflight[idx]:
            del inflight[idx]
            slot.idle_since, slot.idle_cpu = time.monotonic(), _cpu_seconds(slot.proc)
        inst: RemoteInstance = call.instance
        if op[0] == "run":
            inst.key = call.key  # the algorithm it runs for (its construct had the name)
        inst.threads += max(0, threads)
        if data_kb:  # read at a batch's end, and after each op while the worker grows
            slot.data_kb = data_kb
            inst.grew_kb += grew
        if text or dropped:
            self._output.log(inst.spec.name, text, dropped)
        if reply[0] == "skipped":
            call.skipped = True
            return
        if op[0] == "construct":
            if reply[0] == "ok":
                inst.gen = slot.gen
                if rebuild:
                    logger.info("plugin %s (%s) re-created in worker %d", inst.spec.name,
                                call.key, idx)
            else:
                error = reply[1]
                call.error = RemoteError.make(*error)
                call.where = where
                if rebuild:
                    call.error = RemoteError.make(
                        error[0], f"(re-creating it after its worker restarted) {error[1]}")
            return
        if reply[0] == "ok":
            if call.error is None:  # not a failed re-creation just before
                call.result = _decode(reply[1])
        elif call.error is None:
            call.error = RemoteError.make(*reply[1])
            call.where = where
        inst.deaths = 0

    # -- health ----------------------------------------------------------------------------
    def _health(self, slot: _Slot) -> None:
        """Before a batch: a worker whose memory nears its limit (a plugin leaking) or that
        used the CPU while idle (a thread a plugin left spinning) is recycled, the plugin
        to blame moved to a worker of its own so it no longer fails the others."""
        if slot.proc is None or not slot.proc.is_alive():
            return
        if slot.quarantine and not slot.members:
            self._kill(slot)  # its plugins are gone: no process kept for nothing
            return
        limit_mb = _memory_mb * RECYCLE_SHARE if _memory_mb > 0 else RECYCLE_MB_NO_LIMIT
        # Alone in its worker a plugin's memory is its own business: past the limit its own
        # calls fail with MemoryError (shown on its card), no one else's.
        if slot.data_kb > limit_mb * 1024 and not slot.quarantine:
            top = max(slot.members, key=lambda m: m.grew_kb, default=None)
            blame = [top] if top is not None and top.grew_kb > 0 else []
            who = (f"; plugin {top.spec.name} ({top.key}) added {top.grew_kb / 1024:,.0f} MB"
                   if blame and top is not None else "")
            self._recycle(slot, blame, f"its memory reached {slot.data_kb / 1024:,.0f} MB "
                                       f"(recycled past {limit_mb:,.0f} MB){who}")
            return
        if slot.idle_since is None:
            return
        idle = time.monotonic() - slot.idle_since
        if idle < SPIN_IDLE_SECONDS:
            return
        busy = _cpu_seconds(slot.proc) - slot.idle_cpu
        if busy <= SPIN_SHARE * idle:
            return
        blame = [m for m in slot.members if m.threads > 0]
        names = ", ".join(f"{m.spec.name} ({m.key})" for m in blame) or "none known"
        self._recycle(slot, blame, f"it used {busy / idle:.0%} of a CPU while idle for "
                                   f"{idle:.1f} s: a thread left running by a plugin (plugins "
                                   f"that started threads: {names})")

    def _recycle(self, slot: _Slot, blame: list[RemoteInstance], why: str) -> None:
        """Kill ``slot``'s worker (the next batch starts a new one and re-creates its plugin
        objects); the plugins to blame go to a worker of their own first."""
        logger.error("plugin worker %d recycled: %s", slot.index, why)
        for m in blame:
            m.recycled.append(why)
        if blame and not slot.quarantine:
            q = _Slot(len(self._slots))
            q.quarantine = True
            self._slots.append(q)
            for m in blame:
                slot.members.discard(m)
                slot.instances = max(0, slot.instances - 1)
                m.slot, m.gen = q.index, -1
                q.members.add(m)
                q.instances += 1
                logger.error("plugin %s (%s) runs in a worker of its own from now on (worker "
                             "%d)", m.spec.name, m.key, q.index)
        for m in list(slot.members):
            m.grew_kb, m.threads = 0, 0
        self._kill(slot)
        slot.data_kb, slot.idle_since = 0, None

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for slot in self._slots:
                if slot.proc is None:
                    continue
                if slot.proc.is_alive():  # what its plugins started ends first (setsid too)
                    kill_descendants(slot.proc.pid)
                try:
                    slot.conn.send(None)
                except OSError:
                    pass
            # Wait for them to end (not reaped yet: the group of each is still its own, so
            # _kill takes what its plugins forked along with it).
            from multiprocessing.connection import wait

            live = [s.proc.sentinel for s in self._slots if s.proc is not None]
            deadline = time.monotonic() + 1.0
            while live and time.monotonic() < deadline:
                for done in wait(live, timeout=max(0.0, deadline - time.monotonic())):
                    live.remove(done)
            for slot in self._slots:
                self._kill(slot)


Op = tuple[Call, "WorkerOp", bool]  # (call, op sent to the worker, is a re-creation)


class _Batch:
    """One ``ProcessPluginPool.run_all``: the ops sent to each worker, waited for until each
    worker has answered them all, died or overrun its time limit (then it is replaced and the
    calls after the culprit go to the new one)."""

    def __init__(self, pool: ProcessPluginPool, timeout: float, budget: float | None) -> None:
        self.pool, self.timeout = pool, timeout
        self.give_up = None if budget is None else time.monotonic() + budget
        self.inflight: dict[int, list[Op]] = {}
        self.last: dict[int, float] = {}

    def run(self, calls: list[Call]) -> None:
        for slot in list(self.pool._slots):
            self.pool._health(slot)
        for idx, items in self._queues(calls).items():
            self._send(self.pool._slots[idx], items)
        while self.inflight:
            self._wait_and_drain()
            now = time.monotonic()
            for idx in list(self.inflight):
                self._check(self.pool._slots[idx], now)

    def _queues(self, calls: list[Call]) -> dict[int, list[Call]]:
        """The calls to send, by worker slot; the others get their error now."""
        queues: dict[int, list[Call]] = {}
        for c in calls:
            if not isinstance(c.instance, RemoteInstance):
                c.error = RuntimeError("the plugin object was not created in a worker")
                continue
            if len(c.instance.recycled) >= MAX_DEATHS_IN_A_ROW:
                c.deaths = len(c.instance.recycled)
                c.died = (f"its worker was recycled {c.deaths} times for it (last: "
                          f"{c.instance.recycled[-1]})")
                continue
            if c.instance.deaths >= MAX_DEATHS_IN_A_ROW:
                c.deaths = c.instance.deaths
                c.died = (f"stopped: its plugin process died {c.deaths} times in a row "
                          "(fix the plugin, then stop and resume the algorithm)")
                continue
            queues.setdefault(c.instance.slot, []).append(c)
        return queues

    def _send(self, slot: _Slot, items: list[Call]) -> None:
        pool = self.pool
        if not pool._alive(slot):
            if slot.proc is not None:
                pool._kill(slot)
            pool._start(slot)
        ops: list[Op] = []
        for c in items:
            ops.extend(pool._ops_for(slot, c))
        drops, slot.drops = slot.drops, []
        slot.sent_at = time.monotonic()
        slot.batch_len = len(ops)
        slot.conn.send((drops, [op for _, op, _ in ops], self.give_up))
        self.inflight[slot.index] = ops
        self.last[slot.index] = slot.sent_at

    def _deadline(self, slot: _Slot) -> float:
        if not slot.ready:
            return self.last[slot.index] + STARTUP_SECONDS
        started: float = slot.progress[1]  # when the op running began (time.monotonic())
        if started >= slot.sent_at:
            return started + self.timeout
        return self.last[slot.index] + self.timeout

    def _wait_and_drain(self) -> None:
        """Wait for a reply, a worker's end or the nearest deadline; take the replies."""
        from multiprocessing.connection import wait

        slots = self.pool._slots
        now = time.monotonic()
        waits = [self._deadline(slots[idx]) - now for idx in self.inflight]
        try:
            ready = wait([slots[i].conn for i in self.inflight]
                         + [slots[i].proc.sentinel for i in self.inflight],
                         timeout=max(0.0, min(waits)) + 0.001)
        except OSError:
            ready = []
        for idx in list(self.inflight):
            slot = slots[idx]
            if slot.conn in ready or slot.proc.sentinel in ready:
                self.pool._drain(slot, self.inflight, self.last)

    def _check(self, slot: _Slot, now: float) -> None:
        """A worker that died or overran: kill it, blame the op it was running, send the
        calls after it to a new worker (or skip them when the minute's budget is spent)."""
        idx = slot.index
        dead = slot.eof or not slot.proc.is_alive()
        overdue = now > self._deadline(slot)
        if not dead and not overdue:
            return
        if dead:
            self.pool._drain(slot, self.inflight, self.last)
            if idx not in self.inflight:
                return
        ops = self.inflight.pop(idx)
        was_ready = slot.ready
        pos = self._running_op(slot, ops)
        code = self.pool._kill(slot)
        if not was_ready:
            why = f"the plugin process {describe_exit(code)} while starting"
            logger.error("plugin worker %d %s", idx, why)
            for c, _, _ in ops:
                c.died = c.died or why
            return
        culprit = self._blame(ops[pos], idx, code, timed_out=overdue and not dead)
        rest: list[Call] = []
        for c, _, _ in ops:
            if c is not culprit and c not in rest:
                rest.append(c)
        if not rest:
            self.pool._start(slot)  # be ready for the next minute
        elif self.give_up is not None and time.monotonic() > self.give_up:
            for c in rest:
                c.skipped = True
        else:
            self._send(slot, rest)

    @staticmethod
    def _running_op(slot: _Slot, ops: list[Op]) -> int:
        """The op running when the worker ended: replies of the ones before it may be lost
        with the process (they run again in the replacement)."""
        if slot.progress[1] < slot.sent_at:
            return 0
        pos = int(slot.progress[0]) - (slot.batch_len - len(ops))
        return min(max(pos, 0), len(ops) - 1)

    def _blame(self, running: Op, idx: int, code: int | None, timed_out: bool) -> Call:
        """Charge the worker's end to the call running then; one more death in a row."""
        culprit, op, _ = running
        phase = "__init__" if op[0] == "construct" else "run()"
        if timed_out:
            culprit.timed_out = True
            why = f"{phase} took longer than {self.timeout:g} s; its process was stopped"
        else:
            why = f"the plugin process {describe_exit(code)} during {phase}"
            culprit.died = why
        culprit.instance.deaths += 1
        n = culprit.deaths = culprit.instance.deaths
        logger.error("plugin %s (%s): %s; worker %d replaced (%d in a row)",
                     culprit.instance.spec.name, culprit.key, why, idx, n)
        return culprit


class PluginDied(Exception):
    """The worker process running the call exited, crashed or was stopped."""


def spec_from_class(cls: type, ticker: str, capital: float) -> PluginSpec:
    """How a worker re-creates ``cls(ticker, capital)``: the plugin's module (a built-in by
    name, a user plugin by file) and the parameter values set on the class."""
    from app.engine.plugin_worker import PluginSpec
    from app.engine.plugins import USER_PREFIX, is_param

    module = cls.__module__
    name = module.rsplit(".", 1)[-1]
    params = {k: v for k, v in vars(cls).items() if is_param(k, v)}
    if module.startswith(USER_PREFIX + "."):
        path = (getattr(cls, "_plugin_file", None)
                or getattr(sys.modules.get(module), "__file__", None))
        if not path:
            raise LookupError(f"cannot find the file of plugin {name!r}")
        return PluginSpec(name, str(path), False, params, ticker, float(capital))
    if module.startswith("algorithm."):
        return PluginSpec(name, None, True, params, ticker, float(capital))
    raise LookupError(f"{module} is not a plugin module")


def _worker_config(engine: Any) -> WorkerConfig | None:
    """The worker set-up for ``engine``, or None when workers cannot see its data (in-memory
    DBs, a custom data provider) or ``AUTOTRADER_PLUGIN_PROCESSES=0``."""
    import os

    from app.engine.plugin_worker import WorkerConfig

    if os.environ.get("AUTOTRADER_PLUGIN_PROCESSES", "1") == "0":
        return None
    system, market = getattr(engine, "system", None), getattr(engine, "market", None)
    provider = getattr(engine, "provider", None)
    paths = [str(getattr(s, "path", ":memory:")) for s in (system, market)]
    if ":memory:" in paths or type(provider).__name__ != "EngineProvider" \
            or getattr(provider, "system", None) is not system \
            or getattr(provider, "market", None) is not market:
        return None
    return WorkerConfig(paths[0], paths[1],
                        tuple(str(d) for d in getattr(engine, "plugin_dirs", [])), _memory_mb)


class PluginPool:
    """What the engine uses: plugin objects in worker processes where the workers can read
    the engine's data, else (and for plain functions) threads.

    The engine hands over ``partial(engine._construct, cls, ticker, capital)`` to create a
    plugin object and ``partial(engine._invoke, instance, ctx, minute, algo_id)`` to run one;
    this pool recognises those shapes and runs them in a worker process instead, so the
    engine's code is the same for both. A process call that dies sets ``Call.died`` and an
    error (``PluginDied``) with the reason.
    """

    def __init__(self, workers: int = 4) -> None:
        self.size = max(1, workers)
        self._threads = ThreadPluginPool(workers)
        self._procs: ProcessPluginPool | None = None
        self._decided = False

    @property
    def processes(self) -> ProcessPluginPool | None:
        return self._procs

    def _processes_for(self, engine: Any) -> ProcessPluginPool | None:
        if not self._decided:
            self._decided = True
            cfg = _worker_config(engine)
            if cfg is not None:
                import os

                n = min(self.size, max(2, min(4, os.cpu_count() or 2)))
                self._procs = ProcessPluginPool(n, cfg)
        return self._procs

    def call(self, fn: Callable[[], Any], timeout: float, key: Any = None) -> Call:
        if isinstance(fn, partial) and getattr(fn.func, "__name__", "") == "_construct" \
                and len(fn.args) == 3 and isinstance(fn.args[0], type):
            procs = self._processes_for(getattr(fn.func, "__self__", None))
            if procs is not None:
                cls, ticker, capital = fn.args
                try:
                    spec = spec_from_class(cls, ticker, capital)
                except LookupError as e:
                    logger.info("plugin %s runs on a thread: %s", key, e)
                else:
                    c = procs.construct(spec, timeout, key)
                    if c.died and c.error is None:
                        c.error = PluginDied(c.died)
                    return c
        return self._threads.call(fn, timeout, key)

    def run_all(self, calls: list[Call], timeout: float,
                budget: float | None = None) -> list[Call]:
        remote, local = [], []
        for c in calls:
            fn = c.fn
            if self._procs is not None and isinstance(fn, partial) and len(fn.args) == 4 \
                    and isinstance(fn.args[0], RemoteInstance):
                inst, ctx, minute, algo_id = fn.args
                c.instance, c.op = inst, ("run", ctx, minute, algo_id)
                remote.append(c)
            else:
                local.append(c)
        started = time.monotonic()
        if local:
            self._threads.run_all(local, timeout, budget)
        if remote and self._procs is not None:
            left = None if budget is None else max(0.0, budget - (time.monotonic() - started))
            self._procs.run_all(remote, timeout, left)
            for c in remote:
                if c.died and c.error is None:
                    c.error = PluginDied(c.died)
        return calls

    def close(self) -> None:
        self._threads.close()
        if self._procs is not None:
            self._procs.close()
