"""Plugins run in worker processes: hostile plugins cost only their own algorithm's minute.

Real worker processes (forkserver), real SQLite files, the real simulated broker.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from tests.engine.conftest import HERE, PLUGINS, T0
from tests.waiting import wait_until

HOSTILE = HERE / "plugins_hostile"
DIRS = [HOSTILE, PLUGINS]


def _minute(i: int):
    return T0 + timedelta(minutes=i)


def _worker_pids(engine) -> list[int]:
    procs = engine._pool.processes
    assert procs is not None, "plugins should run in worker processes here"
    return procs.pids()


def test_os_exit_costs_only_that_algorithm_and_three_in_a_row_stop_it(make_engine):
    engine = make_engine(plugin_dirs=DIRS, timeout=5.0)
    good = engine.create_algorithm("scripted", "AAA", 10_000, {"action": "buy", "shares": 1})
    bad = engine.create_algorithm("exits", "BBB", 10_000)
    other = engine.create_algorithm("seed_reader", "BBB", 10_000)
    pids = set(_worker_pids(engine))
    assert os.getpid() not in pids

    r = engine.run_tick(_minute(0))
    assert "the plugin process exited with code 1 during run()" in r.errors[bad]
    assert good not in r.errors and other not in r.errors
    assert sorted((f["algo_id"], f["shares"]) for f in r.fills) == [(good, 1), (other, 1)]
    assert engine.algorithm_view(bad).error == r.errors[bad]
    assert set(_worker_pids(engine)) != pids  # the dead worker was replaced

    r = engine.run_tick(_minute(1))
    assert "exited with code 1 during run()" in r.errors[bad]
    assert good not in r.errors and other not in r.errors
    r = engine.run_tick(_minute(2))
    assert "exited with code 1" in r.errors[bad]
    # The third death in a row stops it, with the reason on its card.
    view = engine.algorithm_view(bad)
    assert view.status == "stopped"
    assert "died 3 times in a row" in view.error and "exited with code 1" in view.error
    assert engine.system.get_algorithm(bad)["status"] == "stopped"
    # The fourth minute it is not run any more.
    before = set(_worker_pids(engine))
    r = engine.run_tick(_minute(3))
    assert bad not in r.errors and bad not in {d["algo_id"] for d in r.decisions}
    assert set(_worker_pids(engine)) == before
    assert good not in r.errors and other not in r.errors
    assert engine.algorithm_view(good).position == 4


def test_exit_in_init_refuses_the_algorithm_with_the_reason(make_engine):
    from app.engine.facade import EngineError

    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)  # the first tick waits for them
    # Every worker started first (one algorithm each): a cold start (the forkserver, imports)
    # on a loaded machine takes longer than create_algorithm waits, and the refusal would come
    # as an error state a moment later instead (test_exit_in_init_later_is_an_error_state).
    ok = [engine.create_algorithm("scripted", "AAA", 1000, {"action": "buy", "shares": 1})]
    procs = engine._pool.processes
    ok += [engine.create_algorithm("scripted", "AAA", 1000, {"action": "buy", "shares": 1})
           for _ in range(procs.size - 1)]
    assert engine.run_tick(_minute(0)).errors == {}
    assert len(procs.pids()) == procs.size
    try:
        engine.create_algorithm("init_exits", "AAA", 1000)
    except EngineError as e:
        assert "exited with code 4 during __init__" in str(e)
    else:
        raise AssertionError("a plugin that exits in __init__ must be refused")
    assert engine.run_tick(_minute(1)).errors == {}
    assert [engine.algorithm_view(a).position for a in ok] == [2] * len(ok)


def test_exit_in_init_later_is_an_error_state(make_engine):
    """A plugin whose worker was still starting when create_algorithm stopped waiting: the
    algorithm exists and shows the reason as its error; the others are not touched."""
    engine = make_engine(plugin_dirs=DIRS, timeout=30.0)
    from app.engine.facade import EngineError

    try:
        bad = engine.create_algorithm("init_exits", "AAA", 1000)
    except EngineError as e:  # the worker was quick enough: refused at once
        assert "exited with code 4 during __init__" in str(e)
        return
    engine.run_tick(_minute(0))
    view = engine.algorithm_view(bad)
    assert view.status == "error" and "exited with code 4 during __init__" in view.error


def test_endless_loop_is_killed_at_the_time_limit_and_others_trade(make_engine):
    engine = make_engine(plugin_dirs=DIRS, timeout=0.5)
    spinner = engine.create_algorithm("spins", "AAA", 10_000)
    good = [engine.create_algorithm("scripted", t, 10_000, {"action": "buy", "shares": 2})
            for t in ("AAA", "BBB", "BBB")]
    pids = set(_worker_pids(engine))
    t0 = time.monotonic()
    r = engine.run_tick(_minute(0))
    took = time.monotonic() - t0
    assert "longer than 0.5 s" in r.errors[spinner]
    assert not any(g in r.errors for g in good)
    assert sorted(f["algo_id"] for f in r.fills) == sorted(good)
    assert took < 5.0  # the limit plus a replacement worker, not forever
    # The spinning process is gone: nothing of ours is left burning a core.
    for pid in pids - set(_worker_pids(engine)):
        wait_until(lambda pid=pid: _gone(pid), what=f"worker {pid} gone")
    r = engine.run_tick(_minute(1))
    assert not any(g in r.errors for g in good)
    assert "longer than 0.5 s" in r.errors[spinner]


def test_print_flood_goes_to_the_log_rate_limited(make_engine, caplog):
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)
    with caplog.at_level(logging.INFO, logger="plugin"):
        flood = engine.create_algorithm("floods", "AAA", 1000)
        for i in range(3):
            r = engine.run_tick(_minute(i))
            assert flood not in r.errors
    lines = [rec for rec in caplog.records if rec.name == "plugin.floods"]
    assert 1 < len(lines) <= 21  # at most 20 lines a minute, not 60,000
    assert "floods __init__ in pid" in lines[0].getMessage()
    pid = int(lines[0].getMessage().rsplit(" ", 1)[1])
    assert pid != os.getpid()  # plugin code runs in another process


def test_sys_exit_in_run_is_an_error_of_that_call_only(make_engine):
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)
    bad = engine.create_algorithm("sysexit", "AAA", 1000)
    good = engine.create_algorithm("scripted", "AAA", 1000, {"action": "buy", "shares": 1})
    pids: list[int] = []
    for i in range(4):
        r = engine.run_tick(_minute(i))
        assert "run() raised SystemExit: 3" in r.errors[bad]
        assert good not in r.errors
        pids = pids or _worker_pids(engine)  # both workers up after the first tick
    assert _worker_pids(engine) == pids  # no worker died for it
    assert engine.algorithm_view(bad).status == "running"


def test_seed_style_plugin_reads_the_dbs_from_its_worker(make_engine, caplog):
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)  # the first tick waits for workers
    with caplog.at_level(logging.INFO, logger="plugin"):
        a = engine.create_algorithm("seed_reader", "AAA", 1000)
        engine.run_tick(_minute(0))
        engine.run_tick(_minute(1))
    assert engine.algorithm_view(a).position == 1  # bought once, then saw its transaction
    msgs = [r.getMessage() for r in caplog.records if r.name == "plugin.seed_reader"]
    assert msgs[0].endswith("bars 5 txs 0") and msgs[1].endswith("bars 5 txs 1")


def test_same_plugin_name_in_two_folders_runs_the_engines_own_file(make_engine, tmp_path):
    """Two folders with a plugin of the same name (one module name in this process): each
    engine's worker loads the file its engine listed, not the one imported last."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, shares in ((a, 1), (b, 2)):
        folder.mkdir()
        (folder / "twin.py").write_text(
            "class Algorithm:\n"
            "    def __init__(self, ticker, initial_capital):\n        pass\n"
            f"    def run(self, current_time, algo_id):\n        return ('buy', {shares})\n")
    engine = make_engine(plugin_dirs=[b])
    make_engine(plugin_dirs=[a])  # imports a's twin.py after b's
    algo = engine.create_algorithm("twin", "AAA", 10_000)
    r = engine.run_tick(_minute(0))
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(algo, 2)]


def test_plugin_objects_are_spread_over_the_workers(make_engine):
    """Each new object goes to the worker holding the fewest; a worker's start or restart
    does not forget the objects it holds (they were all piling into the first worker)."""
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)
    first = engine.create_algorithm("scripted", "AAA", 1000)
    procs = engine._pool.processes
    ids = [first] + [engine.create_algorithm("scripted", "AAA", 1000)
                     for _ in range(2 * procs.size - 1)]
    engine.run_tick(_minute(0))
    assert len(procs.pids()) == procs.size
    assert sorted(s.instances for s in procs._slots) == [2] * procs.size
    engine.delete_algorithm(ids[0])
    import gc

    gc.collect()  # the deleted algorithm's handle is gone: its place is free again
    assert sorted(s.instances for s in procs._slots) == [1] + [2] * (procs.size - 1)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a child of ours not reaped yet: a zombie, ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_what_a_plugin_forks_dies_with_its_worker(make_engine, tmp_path):
    """A plugin that forks a spinning child and then hangs: the worker is killed at the time
    limit and the child with it (it used to spin on, a core lost until reboot)."""
    pid_file = tmp_path / "child.pid"
    engine = make_engine(plugin_dirs=DIRS, timeout=1.0)
    bad = engine.create_algorithm("forks", "AAA", 1000, {"pid_file": str(pid_file)})
    good = engine.create_algorithm("scripted", "BBB", 1000, {"action": "buy", "shares": 1})
    r = engine.run_tick(_minute(0))
    assert "longer than 1 s" in r.errors[bad] and good not in r.errors
    child = int(pid_file.read_text())
    wait_until(lambda: _gone(child), what=f"the plugin's child {child} ended")
    # And at close, a worker's leftovers go too.
    pid_file.unlink()
    engine.run_tick(_minute(1))
    child = int(pid_file.read_text())
    engine.close()
    wait_until(lambda: _gone(child), what=f"the plugin's child {child} ended at close")


def test_a_plugin_asking_for_10_gb_gets_memory_error_in_its_call(make_engine, monkeypatch):
    from app.engine import sandbox

    monkeypatch.setattr(sandbox, "_memory_mb", 512.0)
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)
    hog = engine.create_algorithm("hogs", "AAA", 1000)
    good = engine.create_algorithm("scripted", "BBB", 1000, {"action": "buy", "shares": 1})
    t0 = time.monotonic()
    r = engine.run_tick(_minute(0))
    assert "MemoryError" in r.errors[hog], r.errors
    assert time.monotonic() - t0 < 8.0  # refused at once, not after paging 10 GB in
    assert good not in r.errors and [f["algo_id"] for f in r.fills] == [good]
    for pid in _worker_pids(engine):
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS")).split()[1])
        assert rss_kb < 512 * 1024
        assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "1000"


def test_plugins_do_not_see_the_broker_keys_in_their_environment(make_engine, caplog):
    """The keys may be in the engine's environment (systemd EnvironmentFile, a shell export),
    which worker processes inherit; a worker drops them before any plugin code runs."""
    import subprocess
    import sys

    from .test_demo_process import ROOT

    env = {**os.environ, "APCA_API_SECRET_KEY": "x1", "AUTOTRADER_ALPACA_KEY_ID": "x2",
           "AUTOTRADER_NOTIFY_URLS": "mailto://x", "GITHUB_TOKEN": "x3", "KEEP_ME": "1"}
    code = ("import os; from app.engine.plugin_worker import _contain; _contain(0); "
            "print(sorted(k for k in os.environ if k in {'APCA_API_SECRET_KEY', "
            "'AUTOTRADER_ALPACA_KEY_ID', 'AUTOTRADER_NOTIFY_URLS', 'GITHUB_TOKEN', 'KEEP_ME'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "['KEEP_ME']", out.stderr
    # End to end: what a plugin prints of its environment reaches the log without them.
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)
    with caplog.at_level(logging.INFO, logger="plugin"):
        engine.create_algorithm("snoops", "AAA", 1000)
        engine.run_tick(_minute(0))
        engine.run_tick(_minute(1))
    lines = [r.getMessage() for r in caplog.records if r.name == "plugin.snoops"]
    assert lines and all("env:" in ln for ln in lines)
    assert not any("APCA_" in ln or "ALPACA" in ln or "SECRET" in ln for ln in lines)


def test_a_daemon_a_plugin_starts_with_setsid_dies_with_its_worker(make_engine, tmp_path):
    """fork, setsid, fork, exit: the grandchild is in a group of its own (the group kill
    misses it) and its parent is gone. The worker is a child subreaper, so it is found by
    parent links and killed with the worker: at the time limit, and at close."""
    pid_file = tmp_path / "daemon.pid"
    engine = make_engine(plugin_dirs=DIRS, timeout=1.5)
    bad = engine.create_algorithm("daemonizes", "AAA", 1000, {"pid_file": str(pid_file)})
    r = engine.run_tick(_minute(0))
    assert "longer than 1.5 s" in r.errors[bad]
    daemon = int(wait_until(pid_file.exists) and pid_file.read_text())
    wait_until(lambda: _gone(daemon), what=f"the plugin's setsid daemon {daemon} ended")

    calm = engine.create_algorithm("daemonizes", "BBB", 1000,
                                   {"pid_file": str(pid_file) + "2", "hang": False})
    engine.stop_algorithm(bad)
    r = engine.run_tick(_minute(1))
    assert calm not in r.errors, r.errors
    second = Path(str(pid_file) + "2")
    daemon = int(wait_until(second.exists) and second.read_text())
    assert not _gone(daemon)  # it spins on meanwhile (a leftover: killed with its worker)
    group = os.getpgid(daemon)  # the middle process's session and group, not the worker's
    assert group == os.getsid(daemon) and group not in _worker_pids(engine)
    engine.close()
    wait_until(lambda: _gone(daemon), what=f"the setsid daemon {daemon} ended at close")


def _inst(engine, algo_id):
    """The algorithm's plugin object handle, once its (cold) worker has created it."""
    return wait_until(lambda: engine._algos[algo_id].instance, timeout=60)


def _leak_run(make_engine, monkeypatch, recycle_share: float):
    """A leaking plugin (40 MB kept per call) sharing its worker with a plugin that needs
    150 MB for a moment at each call; the worker limit 600 MB. Returns the engine, the two
    ids, and the errors of 14 minutes by algorithm."""
    from app.engine import sandbox

    monkeypatch.setattr(sandbox, "_memory_mb", 600.0)
    monkeypatch.setattr(sandbox, "RECYCLE_SHARE", recycle_share)
    engine = make_engine(plugin_dirs=DIRS, timeout=10.0)
    leak = engine.create_algorithm("leaks", "AAA", 1000)
    engine.create_algorithm("needs_memory", "BBB", 1000)  # the other worker
    mate = engine.create_algorithm("needs_memory", "AAA", 1000)
    assert _inst(engine, mate).slot == _inst(engine, leak).slot
    errors: dict[int, list[str]] = {}
    for i in range(14):
        for a, why in engine.run_tick(_minute(i)).errors.items():
            errors.setdefault(a, []).append(why)
    return engine, leak, mate, errors


def test_without_recycling_a_leaking_plugin_fails_the_one_sharing_its_worker(
        make_engine, monkeypatch):
    """The control for the test below: recycling off, the leaker's neighbour gets
    MemoryError once the leak has eaten its worker's limit."""
    _, _, mate, errors = _leak_run(make_engine, monkeypatch, recycle_share=100.0)
    assert any("MemoryError" in why for why in errors.get(mate, [])), errors


def test_a_leaking_plugin_is_moved_to_a_worker_of_its_own_and_fails_no_one(
        make_engine, monkeypatch, caplog):
    engine, leak, mate, errors = _leak_run(make_engine, monkeypatch, recycle_share=0.6)
    assert mate not in errors, errors  # its neighbour never failed
    logs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("recycled: its memory reached" in m and "plugin leaks (1) added" in m
               for m in logs), logs
    assert any("plugin leaks (1) runs in a worker of its own" in m for m in logs), logs
    procs = engine._pool.processes
    own = procs._slots[engine._algos[leak].instance.slot]
    assert own.quarantine and set(own.members) == {engine._algos[leak].instance}
    assert engine._algos[mate].instance.slot != own.index
    # In its own worker its memory is its own business: its own calls fail once it reaches
    # the limit (shown on its card), its neighbour's never.
    for i in range(14, 40):
        r = engine.run_tick(_minute(i))
        assert mate not in r.errors, r.errors
        if "MemoryError" in r.errors.get(leak, ""):
            break
    assert "MemoryError" in engine.algorithm_view(leak).error, engine.algorithm_view(leak)


def test_a_thread_a_plugin_leaves_spinning_is_seen_and_its_worker_recycled(
        make_engine, monkeypatch, caplog):
    """A plugin starts a thread that spins for ever and returns: between minutes its worker
    uses the CPU while idle. Seen before the next batch: recycled, the plugin moved to a
    worker of its own; the plugin sharing the worker trades on. (The CPU share that counts
    as spinning is lowered for the test: on a loaded CI machine a spinner may get a tenth of
    a core.)"""
    from app.engine import sandbox
    monkeypatch.setattr(sandbox, "SPIN_SHARE", 0.05)
    engine = make_engine(plugin_dirs=DIRS, timeout=5.0)
    spin = engine.create_algorithm("spawns_spinner", "AAA", 1000)
    engine.create_algorithm("scripted", "BBB", 1000, {"action": "hold"})
    mate = engine.create_algorithm("scripted", "AAA", 1000, {"action": "buy", "shares": 1})
    procs = engine._pool.processes
    slot = procs._slots[_inst(engine, spin).slot]
    assert _inst(engine, mate).slot == slot.index
    assert engine.run_tick(_minute(0)).errors == {}
    pid = slot.proc.pid
    idle_cpu = slot.idle_cpu
    wait_until(lambda: sandbox._cpu_seconds(slot.proc) - idle_cpu > 0.3, timeout=30)
    wait_until(lambda: time.monotonic() - slot.idle_since > sandbox.SPIN_IDLE_SECONDS)
    r = engine.run_tick(_minute(1))
    assert mate not in r.errors and [f["algo_id"] for f in r.fills].count(mate) == 1
    wait_until(lambda: _gone(pid), what="the spinning worker ended")
    logs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("CPU while idle" in m and "spawns_spinner (1)" in m for m in logs), logs
    own = procs._slots[engine._algos[spin].instance.slot]
    assert own.quarantine
    # In its own worker it spins again (a new object, a new thread): restarted each time,
    # and the third time its algorithm stops; the neighbour trades on throughout.
    for i in range(2, 8):
        if engine.algorithm_view(spin).status == "stopped":
            break
        wait_until(lambda: own.idle_since is not None, timeout=30)
        since, base = own.idle_since, own.idle_cpu
        wait_until(lambda b=base: own.proc is not None
                   and sandbox._cpu_seconds(own.proc) - b > 0.3, timeout=30)
        wait_until(lambda t=since: time.monotonic() - t > sandbox.SPIN_IDLE_SECONDS)
        r = engine.run_tick(_minute(i))
        assert mate not in r.errors, r.errors
    view = engine.algorithm_view(spin)
    assert view.status == "stopped" and "recycled 3 times" in (view.error or ""), view
