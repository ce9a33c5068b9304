"""``autotrader doctor``: check the set-up and say in plain words what to fix.

Checks, in order: the config, the data folder, both DBs (integrity and schema), the log folder,
on a Pi kiosk install the screen (a connected output, the named one if set, the device eglfs
opens, rotation and touch), the wall clock (not before this release), free disk space, the Qt
runtime, the algorithm plugins, and, when API keys are set, the keys against the broker and the
clock's drift against the broker's clock. Nothing is changed.
Exit code: 0 when nothing failed (warnings allowed), 1 when something must be fixed.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from app import __version__
from app.config import ConfigError, Settings, load_settings
from app.ops.dbcheck import describe_problem, inspect_db, migration_sets

logger = logging.getLogger(__name__)

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"
DRIFT_WARN_S = 1.0   # the scheduler ticks 2 s after each minute: a second already matters
DRIFT_FAIL_S = 5.0
MIN_FREE_BYTES = 200_000_000
KIOSK_DIR = Path("/etc/autotrader")  # written by packaging/pi-install.sh
KIOSK_RUN_DIR = Path("/run/autotrader")  # eglfs.json, written at each start of the kiosk


@dataclass
class Finding:
    check: str
    level: str
    message: str
    fix: str = ""


class Doctor:
    def __init__(self, settings: Settings, *, offline: bool = False, quick: bool = False,
                 broker_factory: Callable[[Settings], object] | None = None,
                 kiosk_dir: Path = KIOSK_DIR, kiosk_run_dir: Path = KIOSK_RUN_DIR,
                 drm_root: Path | None = None, dev_root: Path | None = None) -> None:
        from app.ops import display

        self.s = settings
        self.offline = offline
        self.quick = quick
        self.broker_factory = broker_factory
        self.kiosk_dir = kiosk_dir
        self.kiosk_run_dir = kiosk_run_dir
        self.drm_root = drm_root or display.SYS_DRM
        self.dev_root = dev_root or display.DEV_DRI
        self.findings: list[Finding] = []

    def add(self, check: str, level: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, message, fix))

    # --- checks -----------------------------------------------------------------------------
    def check_data_dir(self) -> bool:
        d = self.s.data_path
        if d.exists() and not d.is_dir():
            self.add("data folder", FAIL, f"{d} is a file, not a folder",
                     "point data_dir (config, AUTOTRADER_DATA_DIR or --data-dir) at a folder")
            return False
        if not d.exists():
            parent = next((p for p in d.parents if p.exists()), None)
            if parent is not None and os.access(parent, os.W_OK | os.X_OK):
                self.add("data folder", INFO, f"{d} does not exist yet; the first start creates it")
                return False
            self.add("data folder", FAIL, f"{d} does not exist and cannot be created "
                     f"({parent} is not writable)",
                     f"create it and give it to the user who runs AutoTrader: "
                     f"sudo install -d -o $USER {d}")
            return False
        probe = d / f".doctor-{os.getpid()}"
        try:
            probe.write_bytes(b"x")
            probe.unlink()
        except OSError as e:
            self.add("data folder", FAIL, f"{d} is not writable ({e.strerror})",
                     f"give it to the user who runs AutoTrader: sudo chown -R $USER {d}")
            return True
        self.add("data folder", OK, f"{d} is writable")
        return True

    def check_dbs(self) -> None:
        sets = migration_sets()
        for name, migrations in sets.items():
            label = name.replace(".db", " DB")
            path = self.s.data_path / name
            rep = inspect_db(path, migrations, quick=self.quick)
            if not rep.exists:
                self.add(label, INFO, f"{path} not created yet (the first start creates it)")
                continue
            problem = describe_problem(rep)
            if problem and rep.unknown and rep.intact:
                self.add(label, FAIL, problem,
                         "install the newer AutoTrader again, or restore a backup made by this "
                         "version: autotrader restore <backup>")
            elif problem:
                self.add(label, FAIL, problem,
                         "stop AutoTrader and restore the latest backup "
                         f"(autotrader restore {self.s.data_path / 'backups'}/<newest>); "
                         "market.db alone may also be deleted: its bars are fetched again")
            elif rep.pending:
                self.add(label, WARN, f"{path} is healthy but uses an older schema; the next "
                         f"start upgrades it ({', '.join(rep.pending)})",
                         "make a backup first: autotrader backup")
            else:
                rows = ", ".join(f"{k} {v}" for k, v in rep.counts.items())
                self.add(label, OK, f"{path}: integrity ok, schema up to date ({rows})")

    def check_running(self) -> None:
        from app.ops.inuse import db_holders

        pids = sorted({p for n in ("system.db", "market.db")
                       for p in db_holders(self.s.data_path / n)})
        if pids:
            self.add("running", INFO, f"AutoTrader is running (process {', '.join(map(str, pids))})"
                     " and using this data folder")
        else:
            self.add("running", INFO, "AutoTrader is not running on this data folder")

    def kiosk_env(self) -> dict[str, str] | None:
        """The kiosk's settings file (pi-install.sh), or None when this is no kiosk install."""
        path = self.kiosk_dir / "autotrader.env"
        if not path.is_file():
            return None
        env: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                env[key.strip()] = value.strip().strip('"')
        return env

    def check_kiosk_display(self) -> None:
        """On a Pi kiosk install: a screen is connected (the named one, if one is named), the
        device eglfs is told to open exists and can be opened, the rotation is one Qt takes and
        the touch turns with it."""
        from app.ops import display

        env = self.kiosk_env()
        cfg = next((p for p in (self.kiosk_run_dir / "eglfs.json", self.kiosk_dir / "eglfs.json")
                    if p.is_file()), None)
        if env is None and cfg is None:
            return
        env = env or {}
        self._check_outputs(display, env.get("AUTOTRADER_DISPLAY_OUTPUT", ""))
        if cfg is not None:
            self._check_device(cfg)
        where = self.s.sources.get("ui.rotation", "default")
        if where != "default":  # [ui] rotation: the kiosk's guard applies it over the env file
            self.add("rotation", OK, f"{self.s.ui.rotation} degrees from {where} ([ui] rotation), "
                     "touch turned with it (autotrader.env's rotation lines are not used)")
        else:
            self._check_rotation(display, env)

    def _check_outputs(self, display: Any, named: str) -> None:
        connectors = display.scan(self.drm_root)
        listing = display.summary(connectors)
        if not connectors:
            self.add("screen output", FAIL, "no display connector at all: the kernel's KMS "
                     "driver is not loaded", "put dtoverlay=vc4-kms-v3d in "
                     "/boot/firmware/config.txt and reboot")
            return
        chosen = display.choose(connectors, named or None)
        live = [c for c in connectors if c.connected]
        if chosen is not None:
            how = f"the output named in autotrader.env ({named})" if named else "the screen"
            self.add("screen output", OK, f"{how}: {chosen.describe()}; all: {listing}")
        elif named:
            # Not plugged in or switched off is a warning (the kiosk waits and retries on its
            # own; an upgrade must not roll back for it); a name that fits nothing is a FAIL.
            exists = any(named in (c.name, c.qt_name, f"{c.card}-{c.name}") for c in connectors)
            self.add("screen output", WARN if exists else FAIL,
                     f"AUTOTRADER_DISPLAY_OUTPUT={named} " + ("is not connected" if exists
                                                             else "names no connector")
                     + f". Connectors: {listing}",
                     "plug it in and switch it on, or set AUTOTRADER_DISPLAY_OUTPUT in "
                     f"{self.kiosk_dir / 'autotrader.env'} to one that is connected"
                     + (f" ({', '.join(c.name for c in live)})" if live else "")
                     + ", or remove the line to take the first one found")
        else:
            self.add("screen output", WARN, f"no screen is connected. Connectors: {listing}",
                     "check the cable (DSI ribbon: contacts facing the right way, both ends; "
                     "HDMI: the port next to the power input first) and that the screen is "
                     "switched on; the kiosk waits for one at each start")

    def _check_device(self, cfg: Path) -> None:
        from app.ops import display

        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
            device = data.get("device", "")
        except (OSError, ValueError, AttributeError) as e:
            self.add("screen", FAIL, f"{cfg} is not valid JSON ({e})",
                     "fix it, or delete it: the kiosk writes it again at its next start")
            return
        cards = sorted(str(p) for p in self.dev_root.glob("card*"))
        if not device or not Path(device).exists():
            self.add("screen", FAIL, f"{cfg} names the display device {device or '(none)'}, "
                     "which does not exist", "check the screen's cable, then restart the kiosk "
                     "(sudo systemctl restart autotrader), which finds the screen again; "
                     "devices here: " + (", ".join(cards) or "(no /dev/dri/card* at all: "
                                         "enable KMS, dtoverlay=vc4-kms-v3d in "
                                         "/boot/firmware/config.txt)"))
            return
        if not os.access(device, os.R_OK | os.W_OK):
            self.add("screen", WARN, f"this user cannot open {device}",
                     "sudo usermod -aG video,render,input $USER (the kiosk service adds these "
                     "groups itself)")
            return
        card = os.path.basename(os.path.realpath(device))
        outs = [c for c in display.scan(self.drm_root) if c.card == card]
        if card.startswith("card") and not outs and display.scan(self.drm_root):
            self.add("screen", FAIL, f"{device} ({card}) has no display outputs: it is the "
                     "GPU's render-only device, eglfs finds no screen there",
                     "restart the kiosk (it picks the device with the connected screen), or "
                     "point \"device\" at the /dev/dri/by-path/*-card link of the display")
            return
        self.add("screen", OK, f"{device} (from {cfg})")
        if display.display_busy(device) and not self._running_pids():
            self.add("screen", WARN, f"another program holds {device} (the desktop, or "
                     "another kiosk): the kiosk cannot show itself",
                     "boot to the console: sudo bash packaging/pi-install.sh --console-boot, "
                     "then reboot")

    def _check_rotation(self, display: Any, env: dict[str, str]) -> None:
        raw = env.get("QT_QPA_EGLFS_ROTATION")
        matrix = env.get("QT_QPA_LIBINPUT_TOUCH_MATRIX")
        if raw is None and matrix is None:
            return
        valid = {str(display.qt_rotation(d)): d for d in display.ROTATIONS}
        where = self.kiosk_dir / "autotrader.env"
        if raw is not None and raw not in valid:
            self.add("rotation", FAIL, f"QT_QPA_EGLFS_ROTATION={raw} in {where}: Qt takes only "
                     "0, 90, 180 and -90 and ignores anything else",
                     "sudo bash packaging/pi-install.sh --rotate 270 (or 0, 90, 180): it writes "
                     "the rotation and the touch matrix together")
            return
        degrees = valid.get(raw or "0", 0)
        expected = display.format_matrix(display.touch_matrix(degrees))
        got = " ".join((matrix or "1 0 0 0 1 0").split())
        if got != expected:
            self.add("rotation", WARN, f"the picture is turned {degrees} degrees but the touch "
                     f"matrix is {got!r} (expected {expected!r}): taps land in the wrong place",
                     f"sudo bash packaging/pi-install.sh --rotate {degrees}")
        else:
            self.add("rotation", OK, f"{degrees} degrees, touch turned with it")

    def _running_pids(self) -> list[int]:
        from app.ops.inuse import db_holders

        return sorted({p for n in ("system.db", "market.db")
                       for p in db_holders(self.s.data_path / n)})

    def check_wall_clock(self, synced: Callable[[], bool | None] | None = None) -> None:
        from app.clocksane import clock_problem, kernel_clock_synchronized

        fix = ("connect the network and turn on network time: sudo timedatectl set-ntp true "
               "(check: timedatectl status)")
        problem = clock_problem(datetime.now(UTC))
        if problem:
            self.add("wall clock", FAIL, problem + ": the engine does not trade until it is set",
                     fix)
        elif (synced or kernel_clock_synchronized)() is False:
            self.add("wall clock", WARN, "the clock is not kept in sync with network time: "
                     "it drifts, and ticks move with it", fix)

    def check_logs(self) -> None:
        d = self.s.log_path
        target = d if d.exists() else next((p for p in d.parents if p.exists()), d)
        if os.access(target, os.W_OK | os.X_OK):
            self.add("log folder", OK, f"{d}")
        else:
            self.add("log folder", WARN, f"{d} is not writable: the app logs to the console only",
                     f"sudo chown -R $USER {d}")

    def private_paths(self) -> list[tuple[Path, int]]:
        """What must be its owner's only, with the mode each should have: the data folder,
        the DBs (and their WAL/SHM), the log folder and logs, backups, the config file."""
        out: list[tuple[Path, int]] = []
        d = self.s.data_path
        if d.is_dir():
            out.append((d, 0o700))
            for f in sorted(d.iterdir()):
                if f.is_file() and (".db" in f.name or f.suffix in (".log", ".lock", ".json")):
                    out.append((f, 0o600))
            backups = d / "backups"
            if backups.is_dir():
                for root, _dirs, files in os.walk(backups):
                    out.append((Path(root), 0o700))
                    out += [(Path(root) / f, 0o600) for f in sorted(files)]
        logs = self.s.log_path
        if logs.is_dir() and logs != d:
            out.append((logs, 0o700))
            out += [(f, 0o600) for f in sorted(logs.iterdir()) if f.is_file()]
        cfg = Path(self.s.config_path) if self.s.config_path else None
        if cfg is not None and cfg.is_file():
            out.append((cfg, 0o600))
        return out

    def check_file_modes(self) -> None:
        """Trading history, the PIN hash, logs and the config's keys: nobody else may read
        them. One finding listing what is too open, with the chmod that fixes it."""
        if os.name != "posix":
            return
        import shlex
        import stat as st

        loose: list[tuple[Path, int, int]] = []
        for path, want in self.private_paths():
            try:
                mode = st.S_IMODE(path.lstat().st_mode)
            except OSError:
                continue
            if path.is_symlink():
                continue
            if mode & 0o077:
                loose.append((path, mode, want))
        if not loose:
            self.add("file modes", OK, "the data folder, DBs, logs, backups and config are "
                     "private (0700 folders, 0600 files)")
            return
        cmds = []
        for want in (0o700, 0o600):
            paths = [shlex.quote(str(p)) for p, _, w in loose if w == want]
            if paths:
                cmds.append(f"chmod {want:o} " + " ".join(paths))
        shown = ", ".join(f"{p} ({m:04o})" for p, m, _ in loose[:6]) + (
            f" and {len(loose) - 6} more" if len(loose) > 6 else "")
        secret = any(p == Path(self.s.config_path) for p, _, _ in loose) and bool(
            self.s.alpaca.key_id or self.s.alpaca.secret_key)
        self.add("file modes", FAIL if secret else WARN,
                 f"readable by other users of this computer: {shown}; they hold the trading "
                 "history, the PIN hash" + (" and the API keys" if secret else ""),
                 " && ".join(cmds))

    def check_disk(self) -> None:
        d = self.s.data_path
        target = d if d.exists() else next((p for p in d.parents if p.exists()), None)
        if target is None:
            return
        free = shutil.disk_usage(target).free
        warn = max(MIN_FREE_BYTES, int(self.s.engine.disk_warn_mb * 1024 * 1024))
        pause = int(self.s.engine.disk_pause_mb * 1024 * 1024)
        if free < pause:
            self.add("disk", FAIL, f"only {free / 1e6:.0f} MB free where the data lives: "
                     f"trading pauses below {self.s.engine.disk_pause_mb:g} MB",
                     "free some space (old logs, backups, other files on that disk)")
        elif free < warn:
            self.add("disk", WARN, f"only {free / 1e6:.0f} MB free where the data lives",
                     "free some space: the market DB grows with every trading day")
        else:
            self.add("disk", OK, f"{free / 1e9:.1f} GB free")

    def check_qt(self) -> None:
        try:
            # PySide6 first: pyqtgraph binds to the Qt already imported (it would pick PyQt6 if
            # Debian's python3-pyqtgraph brought that along and nothing was imported yet).
            PySide6 = importlib.import_module("PySide6")
            importlib.import_module("PySide6.QtQuick")
            pyqtgraph = importlib.import_module("pyqtgraph")
        except ModuleNotFoundError as e:
            self.add("Qt", WARN, f"the window cannot start: {e}",
                     "on the Pi run packaging/pi-install.sh again (Qt comes from Debian there); "
                     "elsewhere reinstall AutoTrader (make run). Headless mode still works")
            return
        except ImportError as e:  # the module is there, a system library is not (libGL, ...)
            self.add("Qt", WARN, f"the window cannot start: {e}",
                     "install Qt's system libraries: sudo bash packaging/install-system-deps.sh "
                     "(headless mode still works)")
            return
        binding = getattr(importlib.import_module("pyqtgraph.Qt"), "QT_LIB", "?")
        self.add("Qt", OK, f"PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__} "
                 f"(on {binding})")

    def check_plugins(self) -> None:
        try:
            from app.engine.plugins import discover_plugins
        except ImportError:
            return
        plugins = discover_plugins(self.s.plugin_dirs)
        broken = [p for p in plugins if p.error]
        good = len(plugins) - len(broken)
        for p in broken:
            self.add("plugins", WARN, f"plugin {p.name} cannot be used: {p.error}",
                     f"fix or remove {p.path}")
        if good:
            self.add("plugins", OK, f"{good} algorithm plugin(s) load")
        elif not broken:
            self.add("plugins", WARN, "no algorithm plugin found")

    def check_broker(self) -> None:
        if any(f.check == "config" and f.level == FAIL for f in self.findings):
            self.add("broker", INFO, "not checked: fix the config first")
            return
        if not self.s.has_keys:
            self.add("broker", INFO, "no API keys: AutoTrader runs the demo (simulated market "
                     "and broker)", "for paper trading set APCA_API_KEY_ID and "
                     "APCA_API_SECRET_KEY (or the [alpaca] section of the config)")
            return
        if self.offline:
            self.add("broker", INFO, "keys set; not checked (--offline)")
            return
        try:
            if self.broker_factory is not None:
                broker = self.broker_factory(self.s)
            else:
                from app.broker.alpaca import AlpacaBroker

                # No trade stream, few retries: doctor asks two questions and leaves.
                broker = AlpacaBroker.from_settings(self.s, stream=False, max_attempts=2,
                                                    backoff_base=0.2)
        except ImportError as e:
            self.add("broker", WARN, f"the Alpaca client is not available ({e})")
            return
        except Exception as e:  # noqa: BLE001 - any construction failure is reported
            self.add("broker", FAIL, f"cannot set up the Alpaca client: {e}",
                     "check the [alpaca] settings: autotrader config")
            return
        try:
            self._check_account(broker)
        finally:
            close = getattr(broker, "close", None)
            if close:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing must not hide the findings
                    logger.debug("closing the broker failed", exc_info=True)

    def _check_account(self, broker: Any) -> None:
        from app.broker.base import BrokerError

        where = self.s.alpaca.trading_url or ("Alpaca live" if self.s.effective_mode == "live"
                                              else "Alpaca paper")
        try:
            acct = broker.get_account()
        except BrokerError as e:
            if e.status in (401, 403):
                self.add("broker", FAIL, f"{where} rejected the API keys ({e})",
                         "copy the key id and secret again from Alpaca's dashboard; paper and "
                         "live have different keys")
            else:
                self.add("broker", FAIL, f"cannot reach {where}: {e}",
                         "check the network connection"
                         + (" and the [alpaca] URLs in the config" if self.s.alpaca.trading_url
                            else ""))
            return
        except Exception as e:  # noqa: BLE001 - network errors of any kind
            self.add("broker", FAIL, f"cannot reach {where}: {e}", "check the network connection")
            return
        if acct.account_blocked or acct.trading_blocked:
            self.add("broker", FAIL, f"{where}: the account is blocked for trading "
                     f"(status {acct.status})", "see the notices in Alpaca's dashboard")
        else:
            self.add("broker", OK, f"{where} accepts the keys: account {acct.status}, "
                     f"cash {acct.cash:,.2f} {acct.currency}, equity {acct.equity:,.2f}")
        self._check_clock(broker, where)

    def _check_clock(self, broker: Any, where: str) -> None:
        t0 = time.time()
        try:
            clock = broker.get_clock()
        except Exception as e:  # noqa: BLE001
            self.add("clock", WARN, f"cannot read {where}'s clock: {e}")
            return
        t1 = time.time()
        theirs = clock.timestamp.timestamp()
        drift = (t0 + t1) / 2 - theirs  # positive: this machine is ahead
        slack = (t1 - t0) / 2
        shown = (f"this machine is {abs(drift):.1f} s {'ahead of' if drift > 0 else 'behind'} "
                 f"{where}'s clock (+/- {slack:.1f} s)")
        fix = ("turn on network time: sudo timedatectl set-ntp true (check with "
               "timedatectl status)")
        if abs(drift) - slack > DRIFT_FAIL_S:
            self.add("clock", FAIL, shown + ": ticks would run at the wrong moment", fix)
        elif abs(drift) - slack > DRIFT_WARN_S:
            self.add("clock", WARN, shown, fix)
        else:
            self.add("clock", OK, shown)

    def run(self) -> list[Finding]:
        if self.check_data_dir():
            self.check_dbs()
            self.check_running()
        self.check_logs()
        self.check_file_modes()
        self.check_kiosk_display()
        self.check_wall_clock()
        self.check_disk()
        self.check_qt()
        self.check_plugins()
        self.check_broker()
        return self.findings


def load_for_doctor(args: argparse.Namespace) -> tuple[Settings, Finding]:
    """The settings to check with, and the config's own finding. A broken config is a finding,
    and the other checks still run on the defaults (and --data-dir)."""
    try:
        s = load_settings(args.config, overrides={"data_dir": args.data_dir,
                                                  "_explicit_config": bool(args.config)})
    except ConfigError as e:
        fallback = Settings(data_dir=args.data_dir or "", config_path=str(args.config or ""))
        return fallback, Finding("config", FAIL, str(e),
                                 "edit the file (autotrader config --init writes an example "
                                 "beside it when none exists)")
    path = Path(s.config_path)
    where = f"{path}" if path.exists() else f"{path} (not present: defaults in use)"
    return s, Finding("config", OK, f"{where}; mode {s.effective_mode}")


def summary(findings: list[Finding]) -> tuple[str, str]:
    """The closing line and its colour on a terminal."""
    fails = sum(f.level == FAIL for f in findings)
    warns = sum(f.level == WARN for f in findings)
    if fails:
        return f"{fails} problem(s) to fix" + (f", {warns} warning(s)" if warns else ""), "bold red"
    if warns:
        return f"no problem; {warns} warning(s)", "yellow"
    return "everything looks right", "green"


def report(findings: list[Finding], file: TextIO | None = None) -> None:
    """The findings as a table through app/term (colours and wrapped text on a terminal; off
    one, plain text with one line per finding at natural width, so ``grep`` finds a whole
    message, and its fix on the line below)."""
    from rich.text import Text

    from app.term import console, table

    rows: list[list[str]] = []
    for f in findings:
        rows.append([f.level, f.check, f.message])
        if f.fix and f.level in (WARN, FAIL):
            rows.append(["", "", f"fix: {f.fix}"])
    c = console(file)
    c.print(Text(f"AutoTrader doctor {__version__} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"))
    table(["STATUS", "CHECK", "FINDING"], rows, file=file, shrink=("FINDING", "CHECK"),
          wrap=("FINDING",), plain_fit=False)
    line, style = summary(findings)
    c.print(Text(line), style=style if c.is_terminal and not c.no_color else "")


def render(findings: list[Finding]) -> str:
    """``report`` as plain text (what a pipe or a log gets)."""
    buf = io.StringIO()
    report(findings, buf)
    return buf.getvalue().rstrip("\n")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autotrader doctor",
                                description="Check the set-up and say what to fix.")
    p.add_argument("--config", help="config file (default: the platform's config folder)")
    p.add_argument("--data-dir", help="folder of the DBs (default: the platform's data folder)")
    p.add_argument("--offline", action="store_true", help="do not contact the broker")
    p.add_argument("--quick", action="store_true",
                   help="PRAGMA quick_check instead of the full integrity check (big DBs)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv[1:] if argv and argv[0] == "doctor" else argv)
    settings, config_finding = load_for_doctor(args)
    doctor = Doctor(settings, offline=args.offline, quick=args.quick)
    doctor.findings.append(config_finding)
    findings = doctor.run()
    if args.json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        report(findings)
    return 1 if any(f.level == FAIL for f in findings) else 0
