"""The kiosk's screen, found at every start: which output to drive, on which DRM device.

Run by the kiosk unit before the app (``ExecStartPre``)::

    python -m app.ops.display prepare --out /run/autotrader/eglfs.json

It reads ``/sys/class/drm`` (connectors are ``card<N>-<TYPE>-<n>`` folders with a ``status`` and
``modes`` file), picks the connected output (the one named by ``AUTOTRADER_DISPLAY_OUTPUT`` if
set, else a DSI touchscreen before HDMI), finds the device's stable
``/dev/dri/by-path/*-card`` link (card numbers change between boots; on a Pi 4/5 ``card0`` is
often the render-only v3d GPU, and a Pi 5's DSI panel hangs off RP1 as its own card) and writes
Qt's KMS config: that output primary, every other output of the device off. A screen that is
slow to appear (a monitor switched on late, Touch Display 2 takes up to a minute) is waited for
up to ``AUTOTRADER_DISPLAY_WAIT`` seconds with a message on the console; then the step fails and
systemd tries again later.

``python -m app.ops.display guard -- CMD...`` runs CMD (the app) only when no other process
holds the display (the desktop's compositor, another kiosk), else exits with
``EXIT_DISPLAY_BUSY``, which the unit does not restart on. ``list`` shows the connectors;
``touch-matrix DEG`` prints the touch matrix for a rotation. Qt-free; the roots are arguments
so tests run against fake trees.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

SYS_DRM = Path("/sys/class/drm")
DEV_DRI = Path("/dev/dri")
DEFAULT_WAIT_S = 90.0
# Exit codes the unit file knows (RestartPreventExitStatus= for the last two).
EXIT_NO_SCREEN = 69      # EX_UNAVAILABLE: try again later (Restart= with growing delays)
EXIT_DISPLAY_BUSY = 77   # another process drives the screen: restarting cannot help
EXIT_CONFIG = 78         # EX_CONFIG: a setting is wrong: restarting cannot help

# The kernel's connector type names (drm_connector.c) -> Qt's (qkmsdevice.cpp), which Qt's KMS
# config file uses: the type name followed by the connector's index, "HDMI1", "DSI1".
_QT_TYPE = {"HDMI-A": "HDMI", "HDMI-B": "HDMI", "DVI-I": "DVI", "DVI-D": "DVI", "DVI-A": "DVI",
            "SVIDEO": "TV", "9PinDIN": "TV", "Component": "TV", "TV": "TV"}
# Which connected output to take when none is named: the touchscreen first.
_PREFERENCE = ("DSI", "DPI", "HDMI", "DP", "eDP")


def qt_output_name(kernel_name: str) -> str:
    """``HDMI-A-1`` -> ``HDMI1``, ``DSI-2`` -> ``DSI2`` (Qt's naming of KMS outputs)."""
    kind, _, num = kernel_name.rpartition("-")
    if not kind or not num.isdigit():
        return kernel_name
    return _QT_TYPE.get(kind, kind) + num


@dataclass(frozen=True)
class Connector:
    card: str                 # "card1"
    name: str                 # the kernel's name: "DSI-1", "HDMI-A-1"
    status: str               # "connected", "disconnected", "unknown"
    modes: tuple[str, ...]    # "720x1280", ... (the preferred mode first)
    driver: str = ""          # "vc4-drm", "drm-rp1-dsi", ... ("" when unknown)

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @property
    def qt_name(self) -> str:
        return qt_output_name(self.name)

    @property
    def kind(self) -> str:
        return self.name.rpartition("-")[0]

    @property
    def size(self) -> tuple[int, int] | None:
        """The preferred mode's width and height, or None."""
        if not self.modes:
            return None
        w, _, h = self.modes[0].partition("x")
        h = "".join(ch for ch in h if ch.isdigit())  # "1920x1080i" (interlaced)
        return (int(w), int(h)) if w.isdigit() and h else None

    def describe(self) -> str:
        extra = f" {self.modes[0]}" if self.modes else ""
        drv = f", {self.driver}" if self.driver else ""
        return f"{self.name} on {self.card} ({self.status}{extra}{drv})"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def _driver(card_dir: Path) -> str:
    try:
        return os.path.basename(os.readlink(card_dir / "device" / "driver"))
    except OSError:
        return ""


def scan(sys_root: Path = SYS_DRM) -> list[Connector]:
    """Every connector of every DRM device under ``sys_root``, in card then name order."""
    found: list[Connector] = []
    try:
        entries = sorted(p.name for p in sys_root.iterdir())
    except OSError:
        return found
    for entry in entries:
        card, sep, name = entry.partition("-")
        if not sep or not card.startswith("card") or not card[4:].isdigit():
            continue  # card1 itself, renderD128, version
        d = sys_root / entry
        modes = tuple(line.strip() for line in _read(d / "modes").splitlines() if line.strip())
        found.append(Connector(card, name, _read(d / "status") or "unknown", modes,
                               _driver(sys_root / card)))
    found.sort(key=lambda c: (int(c.card[4:]), c.name))
    return found


def choose(connectors: Iterable[Connector], prefer: str | None = None) -> Connector | None:
    """The output to drive: the connected one named ``prefer`` (kernel or Qt name, with or
    without the card: "HDMI-A-1", "HDMI1", "card1-HDMI-A-1"), else the first connected
    touchscreen-like output (DSI, DPI), then HDMI, then anything connected."""
    live = [c for c in connectors if c.connected]
    if prefer:
        want = prefer.strip()
        for c in live:
            if want in (c.name, c.qt_name, f"{c.card}-{c.name}"):
                return c
        return None

    def rank(c: Connector) -> int:
        return _PREFERENCE.index(c.kind) if c.kind in _PREFERENCE else len(_PREFERENCE)

    return min(live, key=rank) if live else None


def stable_device(card: str, dev_root: Path = DEV_DRI) -> Path:
    """The ``/dev/dri/by-path/...-card`` link of ``card`` (stable across boots), else the
    ``/dev/dri/cardN`` node itself."""
    by_path = dev_root / "by-path"
    try:
        links = sorted(by_path.iterdir())
    except OSError:
        links = []
    for link in links:
        if not link.name.endswith("-card") or not link.is_symlink():
            continue
        if os.path.basename(os.readlink(link)) == card:
            return link
    return dev_root / card


def kms_config(chosen: Connector, connectors: Iterable[Connector], device: Path) -> dict:
    """Qt's eglfs_kms config: ``chosen`` primary at its preferred mode, the device's other
    outputs off (outputs of other devices are not Qt's to drive)."""
    outputs = [{"name": chosen.qt_name, "mode": "preferred", "primary": True}]
    for c in connectors:
        if c.card == chosen.card and c.name != chosen.name:
            outputs.append({"name": c.qt_name, "mode": "off"})
    return {"device": str(device), "hwcursor": False, "pbuffers": True, "outputs": outputs}


def summary(connectors: Iterable[Connector]) -> str:
    items = [c.describe() for c in connectors]
    return "; ".join(items) if items else "no display connector at all (is KMS on? "\
        "dtoverlay=vc4-kms-v3d in /boot/firmware/config.txt)"


def wait_for_output(sys_root: Path, prefer: str | None, timeout: float,
                    say: Callable[[str], None], *, interval: float = 1.0,
                    sleep: Callable[[float], None] = time.sleep,
                    monotonic: Callable[[], float] = time.monotonic,
                    ) -> tuple[Connector | None, list[Connector]]:
    """Scan until an output to drive is connected or ``timeout`` seconds passed; ``say`` is
    told once when the wait starts and every 15 s while it lasts."""
    start = monotonic()
    last_said: float | None = None
    while True:
        connectors = scan(sys_root)
        chosen = choose(connectors, prefer)
        if chosen is not None:
            if last_said is not None:
                say(f"screen found after {monotonic() - start:.0f} s: {chosen.describe()}")
            return chosen, connectors
        elapsed = monotonic() - start
        if elapsed >= timeout:
            return None, connectors
        if last_said is None or elapsed - last_said >= 15:
            what = f"the output {prefer}" if prefer else "a screen"
            say(f"AutoTrader is waiting for {what} (up to {timeout - elapsed:.0f} s more). "
                f"Is it plugged in and switched on? Connectors: {summary(connectors)}")
            last_said = elapsed
        sleep(min(interval, max(0.0, timeout - elapsed)))


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, path)


# --- the DRM master -------------------------------------------------------------------------
_DRM_IOCTL_SET_MASTER = 0x641E  # _IO('d', 0x1e)


def display_busy(device: str | Path) -> bool | None:
    """True when another process is the DRM master of ``device`` (a desktop compositor, the
    boot splash, another kiosk), False when it is free, None when this cannot be told.

    Opening a device without a master makes the opener master; SET_MASTER then succeeds. With
    another master present it fails with EBUSY (root) or EACCES (a user whose open did not
    make it master). Closing the file gives the device back at once."""
    import fcntl

    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.ioctl(fd, _DRM_IOCTL_SET_MASTER)
    except OSError as e:
        if e.errno in (errno.EBUSY, errno.EACCES, errno.EPERM):
            return True
        return None
    finally:
        os.close(fd)
    return False


# --- rotation -------------------------------------------------------------------------------
ROTATIONS = (0, 90, 180, 270)


def qt_rotation(degrees: int) -> int:
    """The value for QT_QPA_EGLFS_ROTATION: Qt accepts 0, 90, 180 and -90 (qeglfsscreen.cpp
    warns "Invalid rotation" on 270 and the screen keeps its unrotated size)."""
    if degrees not in ROTATIONS:
        raise ValueError(f"rotation must be one of {ROTATIONS}, got {degrees}")
    return -90 if degrees == 270 else degrees


def touch_matrix(degrees: int) -> tuple[float, float, float, float, float, float]:
    """The libinput calibration matrix (a, b, c, d, e, f) that turns touches with the picture
    when eglfs rotates it by ``degrees`` clockwise: a raw touch at normalized panel coordinates
    (u, v) lands at (a*u + b*v + c, d*u + e*v + f) of the rotated screen. It is the rotation
    about the panel's centre (0.5, 0.5) that Qt's evdev ``rotate=`` applies, for Qt 6.8's
    libinput plugin (QT_QPA_LIBINPUT_TOUCH_MATRIX)."""
    qt_rotation(degrees)  # validates
    turns = (degrees // 90) % 4
    # Clockwise quarter turns in y-down screen coordinates: (x, y) -> (-y, x) about the centre.
    cos = (1, 0, -1, 0)[turns]
    sin = (0, 1, 0, -1)[turns]
    a, b, d, e = cos, -sin, sin, cos
    c = 0.5 - a * 0.5 - b * 0.5
    f = 0.5 - d * 0.5 - e * 0.5
    return (float(a), float(b), float(c), float(d), float(e), float(f))


def format_matrix(m: Iterable[float]) -> str:
    return " ".join(f"{v:g}" for v in m)


def rotation_env(degrees: int) -> dict[str, str]:
    """The settings a rotation needs, together: the picture and the touch."""
    return {"QT_QPA_EGLFS_ROTATION": str(qt_rotation(degrees)),
            "QT_QPA_LIBINPUT_TOUCH_MATRIX": format_matrix(touch_matrix(degrees))}


def configured_rotation(env: dict[str, str] | None = None) -> tuple[int, str] | None:
    """``[ui] rotation`` when the config file or ``AUTOTRADER_UI_ROTATION`` sets it: (degrees,
    where it was set); None when it is left at its default or the config cannot be read (the
    app itself reports a broken config, with its line, when it starts)."""
    from app.config import ConfigError, load_settings

    try:
        settings = load_settings(env=env)
    except (ConfigError, OSError, ValueError):
        return None
    where = settings.sources.get("ui.rotation", "default")
    return None if where == "default" else (settings.ui.rotation, where)


def apply_configured_rotation(env: MutableMapping[str, str]) -> str | None:
    """Set the picture's and the touch's rotation in ``env`` (the app's environment) from the
    config when it names one, replacing those of autotrader.env; a line for the journal."""
    found = configured_rotation(dict(env))
    if found is None:
        return None
    degrees, where = found
    wanted = rotation_env(degrees)
    before = {k: env.get(k) for k in wanted}
    env.update(wanted)
    note = ""
    if any(v is not None and v.split() != wanted[k].split() for k, v in before.items()):
        note = " (instead of autotrader.env's " + ", ".join(
            f"{k}={v}" for k, v in before.items() if v is not None) + ")"
    return f"rotation {degrees} from {where}: " + ", ".join(
        f"{k}={v}" for k, v in wanted.items()) + note


def suggested_rotation(size: tuple[int, int] | None) -> int:
    """A portrait panel (Touch Display 2 is 720x1280) is turned to landscape, which the app's
    layout is made for; anything else stays as it is."""
    if size and size[1] > size[0]:
        return 90
    return 0


# --- command line ---------------------------------------------------------------------------
def _console_writer(console: str | None) -> Callable[[str], None]:
    def say(msg: str) -> None:
        print(f"autotrader-display: {msg}", flush=True)  # the journal
        if console:
            try:
                with open(console, "w", encoding="utf-8") as tty:
                    tty.write(f"\r\n{msg}\r\n")
            except OSError:
                pass
    return say


def _wait_seconds(value: str | None) -> float:
    raw = value if value is not None else os.environ.get("AUTOTRADER_DISPLAY_WAIT", "")
    if not raw.strip():
        return DEFAULT_WAIT_S
    seconds = float(raw)
    if seconds < 0:
        raise ValueError("AUTOTRADER_DISPLAY_WAIT must be 0 or more seconds")
    return seconds


def cmd_prepare(args: argparse.Namespace) -> int:
    say = _console_writer(args.console)
    prefer = args.output if args.output is not None else os.environ.get(
        "AUTOTRADER_DISPLAY_OUTPUT", "")
    try:
        timeout = _wait_seconds(args.wait)
    except ValueError as e:
        say(f"bad setting: {e}")
        return EXIT_CONFIG
    chosen, connectors = wait_for_output(Path(args.sys), prefer or None, timeout, say)
    if chosen is None:
        if prefer and any(c.name == prefer or c.qt_name == prefer for c in connectors):
            say(f"the output {prefer} is not connected. Connectors: {summary(connectors)}")
        elif prefer:
            # Not a config error for good: a panel's driver may still be loading.
            say(f"no output is called {prefer} (AUTOTRADER_DISPLAY_OUTPUT) yet. "
                f"Connectors: {summary(connectors)}")
        else:
            say(f"no screen connected after {timeout:.0f} s; trying again later. "
                f"Connectors: {summary(connectors)}")
        return EXIT_NO_SCREEN
    device = stable_device(chosen.card, Path(args.dev))
    config = kms_config(chosen, connectors, device)
    write_atomically(Path(args.out), json.dumps(config, indent=2) + "\n")
    print(f"autotrader-display: {chosen.describe()} via {device} -> {args.out}", flush=True)
    return 0


def cmd_guard(args: argparse.Namespace) -> int:
    command = [a for a in args.command if a != "--"]
    if not command:
        print("autotrader-display guard: no command given", file=sys.stderr)
        return EXIT_CONFIG
    if os.environ.get("QT_QPA_PLATFORM", "eglfs").startswith("eglfs"):
        cfg = Path(args.config or os.environ.get("QT_QPA_EGLFS_KMS_CONFIG", ""))
        try:
            device = json.loads(cfg.read_text(encoding="utf-8")).get("device", "")
        except (OSError, ValueError) as e:
            print(f"autotrader-display: cannot read the screen config {cfg}: {e}",
                  file=sys.stderr, flush=True)
            return EXIT_CONFIG
        if device and display_busy(device):
            print(f"autotrader-display: another program holds the screen ({device}): a desktop "
                  "session or another kiosk. Not starting (the service will not retry). "
                  "Boot to the console (pi-install.sh --console-boot) or stop the other "
                  "program, then: sudo systemctl restart autotrader", file=sys.stderr, flush=True)
            return EXIT_DISPLAY_BUSY
    said = apply_configured_rotation(os.environ)
    if said:
        print(f"autotrader-display: {said}", flush=True)
    os.execvp(command[0], command)
    return 0  # not reached


def cmd_list(args: argparse.Namespace) -> int:
    connectors = scan(Path(args.sys))
    chosen = choose(connectors)
    for c in connectors:
        mark = "*" if c == chosen else " "
        print(f"{mark} {c.card}-{c.name:<10} {c.status:<12} {' '.join(c.modes[:1]) or '-':<10} "
              f"Qt: {c.qt_name}  {stable_device(c.card, Path(args.dev))}")
    if not connectors:
        print(summary(connectors))
    return 0 if chosen else 1


def cmd_touch_matrix(args: argparse.Namespace) -> int:
    for k, v in rotation_env(args.degrees).items():
        print(f"{k}={v}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.ops.display", description=__doc__.split(
        "\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pre = sub.add_parser("prepare", help="find the screen and write Qt's KMS config")
    pre.add_argument("--out", required=True, help="where to write eglfs.json")
    pre.add_argument("--output", help="the output to drive (default: AUTOTRADER_DISPLAY_OUTPUT, "
                     "else DSI before HDMI)")
    pre.add_argument("--wait", help=f"seconds to wait for a screen (default: "
                     f"AUTOTRADER_DISPLAY_WAIT or {DEFAULT_WAIT_S:.0f})")
    pre.add_argument("--console", help="also show waiting messages here (e.g. /dev/tty1)")
    guard = sub.add_parser("guard", help="run a command unless another program holds the screen")
    guard.add_argument("--config", help="Qt's KMS config (default: QT_QPA_EGLFS_KMS_CONFIG)")
    guard.add_argument("command", nargs=argparse.REMAINDER)
    lst = sub.add_parser("list", help="show the display connectors")
    tm = sub.add_parser("touch-matrix", help="the rotation and touch settings for DEGREES")
    tm.add_argument("degrees", type=int, choices=ROTATIONS)
    for sp in (pre, guard, tm, lst):  # the roots, for tests
        sp.add_argument("--sys", default=str(SYS_DRM), help=argparse.SUPPRESS)
        sp.add_argument("--dev", default=str(DEV_DRI), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return {"prepare": cmd_prepare, "guard": cmd_guard, "list": cmd_list,
            "touch-matrix": cmd_touch_matrix}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
