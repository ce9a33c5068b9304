"""Finding and loading algorithm plugins.

A plugin is a module that defines ``class Algorithm`` (in that module, not imported into it)
with ``run(self, current_time, algo_id)``. Built-ins are the modules of the ``algorithm``
package; user plugins are ``*.py`` files in the configured plugin folders, loaded by path.
A module that fails to import is listed as broken with its error; the others still load.
Names starting with ``_`` are helpers, not plugins.

Parameters are the class's public attributes of a plain type (``sma_short = 20``). An
algorithm created with other values gets a subclass with those attributes overridden, so the
plugin's ``__init__`` already sees them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import logging
import os
import pkgutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.typedvalue import ValueTypeError, parse_typed

logger = logging.getLogger(__name__)

PARAM_TYPES = (bool, int, float, str)
# Class attributes that describe the plugin rather than parameterise it.
NOT_PARAMS = frozenset({"display_name"})
USER_PREFIX = "autotrader_user_plugins"

# The original design's module names for the seed's data functions (``system_databse`` is
# spelt as it was). A plugin copied from it imports them unchanged; they resolve to ``db``'s
# own functions, so they read the current provider: the live DBs, or a backtest's data.
LEGACY_MODULES: dict[str, tuple[str, ...]] = {
    "database": (),
    "database.db_manager": ("get_data_for_algorithm", "get_latest_price",
                            "insert_minute_data", "get_transactions"),
    "system_databse": (),
    "system_databse.system_db_manager": ("get_transactions",),
    "system_database": (),
    "system_database.system_db_manager": ("get_transactions",),
}


class _LegacyAliases(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the legacy names only (no folders, nothing on disk): each is a small module whose
    attributes are ``db``'s functions. Installed once per process by this module's import,
    which every plugin load goes through (app, plugin workers, backtest children)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in LEGACY_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package="." not in fullname)

    def create_module(self, spec: Any) -> None:
        return None  # the default module object

    def exec_module(self, module: Any) -> None:
        import db

        name = module.__name__
        if "." not in name:
            module.__path__ = []  # a package: its one submodule is found by this finder too
        for attr in LEGACY_MODULES[name]:
            setattr(module, attr, getattr(db, attr))
        module.__doc__ = f"Alias of the seed functions in db (original design's {name})."


def install_legacy_aliases() -> None:
    """Make ``database.db_manager`` and ``system_databse.system_db_manager`` importable."""
    if not any(isinstance(f, _LegacyAliases) for f in sys.meta_path):
        sys.meta_path.append(_LegacyAliases())


install_legacy_aliases()


@dataclass(frozen=True)
class PluginInfo:
    name: str
    description: str
    params: dict[str, Any]
    error: str | None
    path: Path | None
    cls: type | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.cls is not None


def _first_line(doc: str | None) -> str:
    if not doc:
        return ""
    for line in inspect.cleandoc(doc).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _import_error(e: BaseException, path: Path | None) -> str:
    """A short, useful description of why a module failed to import."""
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    frames = traceback.extract_tb(e.__traceback__)
    where = ""
    for fr in reversed(frames):
        if path is not None and Path(fr.filename).resolve() == path.resolve():
            where = f" (line {fr.lineno})"
            break
    return f"{type(e).__name__}: {e}{where}"


def is_param(name: str, value: object) -> bool:
    """Whether a class attribute is a parameter: public, of a plain type, not a description
    of the plugin (``display_name``)."""
    return not name.startswith("_") and name not in NOT_PARAMS and type(value) in PARAM_TYPES


def plugin_params(cls: type) -> dict[str, Any]:
    """Public class attributes of a plain type, defined on the plugin's own classes."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        out.update((k, v) for k, v in vars(klass).items() if is_param(k, v))
    return out


def _info_from_module(name: str, module: Any, path: Path | None) -> PluginInfo | None:
    cls = getattr(module, "Algorithm", None)
    if cls is None:
        return None  # a helper module, not a plugin
    if not inspect.isclass(cls) or cls.__module__ != module.__name__:
        return PluginInfo(name, "", {}, "'Algorithm' must be a class defined in this module",
                          path)
    if not callable(getattr(cls, "run", None)):
        return PluginInfo(name, _first_line(cls.__doc__), {}, "class Algorithm has no run() method",
                          path)
    desc = _first_line(cls.__doc__) or _first_line(module.__doc__)
    if path is not None:
        # Two folders may hold plugins of the same name (one module name in sys.modules):
        # the class itself says which file it came from, for the worker processes.
        cls._plugin_file = str(path)
    return PluginInfo(name, desc, plugin_params(cls), None, path, cls)


def _builtin_plugins() -> list[PluginInfo]:
    import algorithm

    out = []
    for mod in sorted(pkgutil.iter_modules(algorithm.__path__), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.ispkg:
            continue
        full = f"algorithm.{mod.name}"
        path = Path(algorithm.__path__[0]) / f"{mod.name}.py"
        try:
            module = importlib.import_module(full)
        except BaseException as e:  # noqa: BLE001 - any failure marks the plugin broken
            if isinstance(e, KeyboardInterrupt):
                raise
            logger.warning("plugin %s failed to import: %s", mod.name, e)
            out.append(PluginInfo(mod.name, "", {}, _import_error(e, path), path))
            continue
        info = _info_from_module(mod.name, module, path)
        if info is not None:
            out.append(info)
    return out


# A user file is executed again only when it changed (mtime, size): listing the plugins often
# (the UI does) must not re-run every plugin's module code each time.
_file_cache: dict[Path, tuple[tuple[int, int], PluginInfo | None]] = {}


# A user file is imported first in a throwaway process (``_probe``): module code that ends
# its process (``os._exit``, a native crash) or never returns would otherwise take the app
# down at every start, before any plugin call is isolated. Off in processes that are the
# isolation already (plugin workers, backtest children).
probe_imports = True
PROBE_SECONDS = 30.0  # a heavy import (pandas, scikit-learn) on a Pi takes seconds
PROBE_START_SECONDS = 60.0  # more for the check process to start (a loaded machine)
_PROBE_OK = 86  # the exit code of a probe whose import returned (a plugin's own exit is not)
_probed: dict[Path, tuple[tuple[int, int], str | None]] = {}


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size)


def _load_file(path: Path) -> PluginInfo | None:
    try:
        stamp = _stamp(path)
    except OSError as e:
        return PluginInfo(path.stem, "", {}, f"cannot read {path}: {e.strerror}", path)
    cached = _file_cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    why = _probe_verdict(path, stamp) if probe_imports else None
    info = PluginInfo(path.stem, "", {}, why, path) if why else _exec_file(path)
    _file_cache[path] = (stamp, info)
    return info


def _probe_verdict(path: Path, stamp: tuple[int, int]) -> str | None:
    """Why ``path`` must not be imported here (its probe ended badly), or None."""
    known = _probed.get(path)
    if known is None or known[0] != stamp:
        if not _remembered({path: stamp}):
            _probe([path])
        known = _probed.get(path)
    return None if known is None else known[1]


# Verdicts are kept across starts (a file that hangs its import would cost PROBE_SECONDS at
# every start), keyed by the file's path, mtime, size and SHA-256 and the stamps of the
# ``_*.py`` helpers beside it: any change to them checks it again.
def verdict_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autotrader" / "plugin-checks.json"


def _fingerprint(path: Path, stamp: tuple[int, int]) -> dict[str, Any]:
    helpers = []
    for h in sorted(path.parent.glob("_*.py")):
        try:
            st = h.stat()
        except OSError:
            continue
        helpers.append([h.name, st.st_mtime_ns, st.st_size])
    return {"stamp": list(stamp), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "helpers": helpers}


def _read_verdicts() -> dict[str, Any]:
    try:
        data = json.loads(verdict_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remembered(todo: dict[Path, tuple[int, int]]) -> list[Path]:
    """The files of ``todo`` whose verdict is kept from an earlier start (put in ``_probed``,
    said again when broken); the others are left to probe."""
    kept = _read_verdicts()
    out = []
    for path, stamp in todo.items():
        entry = kept.get(str(path))
        try:
            if not isinstance(entry, dict) or entry.get("key") != _fingerprint(path, stamp):
                continue
        except OSError:
            continue
        why = entry.get("why")
        if why is not None and entry.get("timeout") and \
                float(entry.get("seconds", 0)) < PROBE_SECONDS:
            continue  # cut at a shorter limit than today's: give it the longer one
        _probed[path] = (stamp, why)
        out.append(path)
        if why:
            logger.error("plugin %s is broken: %s (found at an earlier start; checked again "
                         "when the file changes); it is not loaded", path, why)
    return out


def _remember(verdicts: dict[Path, tuple[tuple[int, int], str | None, bool]]) -> None:
    """Keep the new verdicts for the next start (written whole, then renamed into place)."""
    kept = _read_verdicts()
    for path, (stamp, why, timeout) in verdicts.items():
        try:
            kept[str(path)] = {"key": _fingerprint(path, stamp), "why": why,
                               "timeout": timeout, "seconds": PROBE_SECONDS}
        except OSError:
            continue
    target = verdict_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(kept, f)
        os.replace(tmp, target)
    except OSError as e:
        logger.warning("cannot keep the plugin checks in %s: %s", target, e)


def _probe(paths: list[Path]) -> None:
    """Import each file in a process of its own, all at once, within ``PROBE_SECONDS``; the
    verdicts go to ``_probed``. A probe that cannot be started is no verdict (imported here)."""
    from multiprocessing.connection import wait

    from app.engine import sandbox

    ctx = _probe_context()
    running: dict[Path, Any] = {}
    for path in paths:
        try:
            stamp = _stamp(path)
            began = ctx.Value("d", 0.0, lock=False)
            proc = ctx.Process(target=_probe_child,
                               args=(str(path), sandbox._memory_mb, began),
                               name=f"autotrader-plugin-check-{path.stem}", daemon=True)
            proc.start()
        except (OSError, RuntimeError) as e:
            logger.warning("cannot check plugin %s in a separate process: %s", path, e)
            continue
        running[path] = (stamp, proc, began)
    spawned = time.monotonic()

    def due(began: Any) -> float:
        # The limit counts from when the file's own code starts: on a loaded machine the
        # check process itself may take that long to start (at a load of 15 on 2 cores every
        # file of a folder "took longer than 30 s" before it ran a line).
        if began.value > 0:
            return float(began.value) + PROBE_SECONDS
        return spawned + PROBE_START_SECONDS + PROBE_SECONDS

    new: dict[Path, tuple[tuple[int, int], str | None, bool]] = {}
    while running:
        now = time.monotonic()
        nearest = min(due(b) for _, _, b in running.values())
        wait([proc.sentinel for _, proc, _ in running.values()],
             timeout=min(max(0.0, nearest - now), 0.5))  # began moves a due time later
        now = time.monotonic()
        for path, (stamp, proc, began) in list(running.items()):
            if proc.is_alive():
                if now >= due(began):
                    del running[path]
                    _probe_overdue(path, stamp, proc, began.value > 0, new)
                continue
            del running[path]
            proc.join()
            code = proc.exitcode
            _probed[path] = (stamp, None if code == _PROBE_OK else
                             f"importing it ended its process: it {sandbox.describe_exit(code)}")
            if code != -9:  # SIGKILL may be the OOM killer's, not the file's doing
                new[path] = (*_probed[path], False)
    if new:
        _remember(new)
    for path, (_, why) in ((p, _probed[p]) for p in paths if p in _probed):
        if why:
            logger.error("plugin %s is broken: %s; it is not loaded", path, why)


def _probe_overdue(path: Path, stamp: tuple[int, int], proc: Any, began: bool,
                   new: dict[Path, tuple[tuple[int, int], str | None, bool]]) -> None:
    """A probe past its time: killed (with what it started), the file listed as broken; the
    verdict kept for the next start only when the file's own code ran out the limit."""
    from app.engine import sandbox

    sandbox.kill_tree(proc.pid)
    proc.kill()
    proc.join(5)
    if began:
        _probed[path] = (stamp, f"importing it took longer than {PROBE_SECONDS:g} s (module "
                                "code that never returns?)")
        new[path] = (*_probed[path], True)
    else:
        _probed[path] = (stamp, f"its check did not start within {PROBE_START_SECONDS:g} s "
                                "(a very busy machine?); it is checked again at the next start")


def _probe_context() -> Any:
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["app.engine.plugin_worker"])  # the plugin pool's too
    return ctx


def _probe_child(path: str, memory_mb: float, began: Any = None) -> None:
    """In the probe process: import the file as the app would, then exit with ``_PROBE_OK``
    (an exception in it is fine: the app lists the plugin as broken with it)."""
    import os

    from app.engine import plugin_worker

    global probe_imports
    probe_imports = False
    plugin_worker._harden()
    plugin_worker._contain(memory_mb)
    if began is not None:
        began.value = time.monotonic()  # the file's own code starts now (system-wide clock)
    _exec_file(Path(path))
    os._exit(_PROBE_OK)


def _exec_file(path: Path) -> PluginInfo | None:
    name = path.stem
    modname = f"{USER_PREFIX}.{name}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        return PluginInfo(name, "", {}, f"cannot load {path}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)  # helper modules beside the plugin (``import _indicators``)
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # noqa: BLE001
        sys.modules.pop(modname, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        logger.warning("plugin %s failed to import: %s", path, e)
        return PluginInfo(name, "", {}, _import_error(e, path), path)
    return _info_from_module(name, module, path)


def _probe_new_files(dirs: list[Path]) -> None:
    """Probe, in parallel, the user files not imported yet in their current version."""
    todo: dict[Path, tuple[int, int]] = {}
    for d in dirs:
        d = Path(d).expanduser()
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.py")):
            try:
                stamp = _stamp(path)
            except OSError:
                continue
            cached, probed = _file_cache.get(path), _probed.get(path)
            if not path.name.startswith("_") and (cached is None or cached[0] != stamp) \
                    and (probed is None or probed[0] != stamp):
                todo[path] = stamp
    kept = set(_remembered(todo)) if todo else set()
    left = [p for p in todo if p not in kept]
    if left:
        _probe(left)


def discover_plugins(extra_dirs: list[Path] | None = None) -> list[PluginInfo]:
    """Every plugin: built-ins first, then each user folder's ``*.py`` files by name."""
    found = _builtin_plugins()
    names = {p.name for p in found}
    if probe_imports:
        _probe_new_files(list(extra_dirs or []))
    for d in extra_dirs or []:
        d = Path(d).expanduser()
        if not d.is_dir():
            if str(d):
                logger.warning("plugin folder %s does not exist", d)
            continue
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_"):
                continue
            if path.stem in names:
                found.append(PluginInfo(path.stem, "", {}, f"a plugin named {path.stem!r} exists "
                                        "already; rename the file", path))
                continue
            info = _load_file(path)
            if info is not None:
                found.append(info)
                names.add(info.name)
    return found


class PluginNotFoundError(LookupError):
    pass


def load_plugin(name: str, extra_dirs: list[Path] | None = None) -> PluginInfo:
    """The named plugin (raises ``PluginNotFoundError``; a broken one is returned with its
    ``error`` set)."""
    for p in discover_plugins(extra_dirs):
        if p.name == name:
            return p
    raise PluginNotFoundError(f"no algorithm plugin named {name!r}")


def param_range(cls: Any, name: str) -> tuple[float | None, float | None, float | None]:
    """The (min, max, step) a plugin declares for a number parameter in its class attribute
    ``param_ranges = {"sma_short": (2, 200), "threshold": (0.0, 5.0, 0.5)}`` (None: no
    bound; plain class attributes stay the parameters themselves)."""
    ranges = getattr(cls, "param_ranges", None) if cls is not None else None
    spec = ranges.get(name) if isinstance(ranges, dict) else None
    if not isinstance(spec, tuple | list) or len(spec) not in (2, 3):
        return None, None, None
    vals = [float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None
            for x in spec]
    return vals[0], vals[1], vals[2] if len(vals) == 3 and vals[2] and vals[2] > 0 else None


def range_problem(cls: Any, name: str, value: Any) -> str | None:
    """Why ``value`` is outside the parameter's declared range or step, or None."""
    return check_range(param_range(cls, name), name, value)


def check_range(spec: tuple[float | None, float | None, float | None], name: str,
                value: Any) -> str | None:
    """``range_problem`` for a (min, max, step) already read (the UI's pad has no class)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    lo, hi, step = spec
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = (f"between {lo:g} and {hi:g}" if lo is not None and hi is not None
                else f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
        return f"parameter {name!r} must be {span}, got {value:g}"
    if step and lo is not None:
        k = (value - lo) / step
        if abs(k - round(k)) > 1e-6:
            return f"parameter {name!r} goes in steps of {step:g} from {lo:g}, got {value:g}"
    return None


def coerce_params(info: PluginInfo, params: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``params`` against the plugin's declared ones (type, and range when declared);
    convert to their types."""
    out: dict[str, Any] = {}
    for k, v in (params or {}).items():
        if k not in info.params:
            known = ", ".join(info.params) or "none"
            raise ValueError(f"plugin {info.name!r} has no parameter {k!r} (known: {known})")
        try:
            out[k] = parse_typed(type(info.params[k]), v)
        except ValueTypeError as e:
            raise ValueError(f"parameter {k!r} must be {e.expected}, got {v!r}") from None
        problem = range_problem(info.cls, k, out[k])
        if problem:
            raise ValueError(problem)
    return out


def make_class(info: PluginInfo, params: dict[str, Any] | None) -> type:
    """The plugin class with ``params`` overriding its class attributes."""
    if info.cls is None:
        raise ValueError(f"plugin {info.name!r} is broken: {info.error}")
    values = coerce_params(info, params)
    if not values:
        return info.cls
    return type(info.cls.__name__, (info.cls,), {**values, "__module__": info.cls.__module__})


def use_configured_dbs(settings: Any = None) -> Any:
    """For a plugin run by hand outside the app (``python -c ...``): make the seed functions
    read the configured system and market DBs. The app and backtests set their own provider;
    nothing opens the user's DBs unless this is called."""
    import db
    from app.config import load_settings

    s = settings if settings is not None else load_settings()
    return db.open_provider(s.system_db_path, s.market_db_path)
