"""The install scripts, the systemd unit and the desktop entry, checked with the real tools
(bash, shellcheck, systemd-analyze, desktop-file-validate) where the machine has them."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SCRIPTS = sorted(PACKAGING.glob("*.sh"))


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """systemd's format: sections of Key=Value lines, keys may repeat (Environment=, After=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"line {n} outside a section: {raw!r}"
        assert "=" in line, f"line {n} is not Key=Value: {raw!r}"
        k, v = line.split("=", 1)
        sections[current].append((k.strip(), v.strip()))
    return sections


def _group_exists(grp, name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit[section] if k == key]


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, Path]:
    """The unit exactly as pi-install.sh writes it, for an install prefix in tmp_path."""
    prefix = tmp_path / "opt"
    (prefix / "venv/bin").mkdir(parents=True)
    for name in ("autotrader", "python"):
        exe = prefix / "venv/bin" / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    out = tmp_path / "units"
    subprocess.run(["bash", str(PACKAGING / "pi-install.sh"), "--prefix", str(prefix),
                    "--render-units", str(out)], check=True, timeout=30)
    return out / "autotrader.service", prefix


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed "
                    "(apt-get install shellcheck)")
def test_scripts_pass_shellcheck() -> None:
    r = subprocess.run(["shellcheck", "-x", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_unit_keeps_the_kiosk_running_on_eglfs(rendered: tuple[Path, Path]) -> None:
    path, prefix = rendered
    text = path.read_text()
    assert not re.search(r"@[A-Z]+@", text), "a template field was left unfilled"
    unit = parse_unit(text)
    assert set(unit) == {"Unit", "Service", "Install"}
    after = " ".join(values(unit, "Unit", "After")).split()
    wants = " ".join(values(unit, "Unit", "Wants")).split()
    # The network and the clock (a Pi 4 has no RTC): ordered after *and* pulled in, else
    # time-sync.target orders nothing.
    for dep in ("network-online.target", "time-sync.target", "systemd-time-wait-sync.service"):
        assert dep in after and dep in wants, dep
    # The boot splash lets go of the screen first.
    assert "plymouth-quit-wait.service" in after and "plymouth-quit-wait.service" in wants
    # Never on the screen together with a desktop or a login prompt.
    conflicts = " ".join(values(unit, "Unit", "Conflicts")).split()
    assert {"display-manager.service", "getty@tty1.service"} <= set(conflicts)
    assert "display-manager.service" in after
    # A crash restarts it, with growing delays and no permanent give-up.
    assert values(unit, "Service", "Restart") == ["always"]
    assert values(unit, "Unit", "StartLimitIntervalSec") == ["0"]
    assert not values(unit, "Unit", "StartLimitBurst")
    assert float(values(unit, "Service", "RestartSec")[0]) > 0
    assert int(values(unit, "Service", "RestartSteps")[0]) >= 3
    assert values(unit, "Service", "RestartMaxDelaySec") == ["5min"]
    # ... except when a restart cannot help: the exit codes of the app and the display guard.
    from app.ops import display

    prevent = set(values(unit, "Service", "RestartPreventExitStatus")[0].split())
    assert prevent == {"2", str(display.EXIT_DISPLAY_BUSY), str(display.EXIT_CONFIG)}
    assert str(display.EXIT_NO_SCREEN) not in prevent  # no screen yet: try again later
    env = dict(e.split("=", 1) for e in values(unit, "Service", "Environment"))
    assert env["QT_QPA_PLATFORM"] == "eglfs"
    assert env["QT_QPA_EGLFS_INTEGRATION"] == "eglfs_kms"
    assert env["QT_QPA_EGLFS_KMS_CONFIG"] == "/run/autotrader/eglfs.json"
    assert env["QT_QPA_EGLFS_HIDECURSOR"] == "1"
    assert env["PYQTGRAPH_QT_LIB"] == "PySide6"  # Debian's pyqtgraph brings PyQt6 along
    assert float(env["AUTOTRADER_DISPLAY_WAIT"]) > 0
    assert values(unit, "Service", "EnvironmentFile") == ["-/etc/autotrader/autotrader.env"]
    assert values(unit, "Service", "RuntimeDirectory") == ["autotrader"]
    # The screen is found at every start and written where the app's Qt reads it.
    pre = values(unit, "Service", "ExecStartPre")[0].split()
    py = str(prefix / "venv/bin/python")
    # -I: the service's working folder (the user's home) is not searched for modules.
    assert pre[:6] == ["+" + py, "-I", "-m", "app.ops.display", "prepare", "--out"]
    assert pre[6] == env["QT_QPA_EGLFS_KMS_CONFIG"]
    # The start timeout leaves room for the screen wait.
    timeout = values(unit, "Service", "TimeoutStartSec")[0]
    assert int(timeout) > float(env["AUTOTRADER_DISPLAY_WAIT"]) + 30
    exec_start = values(unit, "Service", "ExecStart")[0].split()
    assert exec_start == [py, "-I", "-m", "app.ops.display", "guard", "--",
                          str(prefix / "venv/bin/autotrader"), "run", "--kiosk"]
    assert values(unit, "Service", "User") and values(unit, "Service", "Group")
    # The display, GPU and touch groups that exist here (systemd fails on a missing group).
    import grp

    existing = {g for g in ("video", "render", "input") if _group_exists(grp, g)}
    listed = set(" ".join(values(unit, "Service", "SupplementaryGroups")).split())
    assert listed == existing
    # Data lives in the user's data folder: nothing points the app elsewhere.
    assert "AUTOTRADER_DATA_DIR" not in env
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(rendered: tuple[Path, Path]) -> None:
    units = sorted(rendered[0].parent.iterdir())
    assert [u.name for u in units] == ["autotrader-backup.service", "autotrader-backup.timer",
                                       "autotrader.service"]
    r = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True,
                       text=True, timeout=60, cwd=rendered[0].parent)
    ours = [line for line in (r.stdout + r.stderr).splitlines()
            if any(u.name in line for u in units)]
    version = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True)
    m = re.match(r"systemd (\d+)", version.stdout)
    if m and int(m.group(1)) < 254:
        # RestartSteps=/RestartMaxDelaySec= came with systemd 254 (Debian 13 has 257); an
        # older systemd ignores them and restarts every RestartSec= without giving up.
        newer = ("'RestartSteps'", "'RestartMaxDelaySec'")
        assert sum(any(k in line for k in newer) for line in ours) == 2, ours
        ours = [line for line in ours if not any(k in line for k in newer)]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_time_wait_sync_cap_is_a_valid_drop_in(tmp_path: Path) -> None:
    """The first network time sync is waited for, but not for ever (a Pi without network)."""
    cap = parse_unit((PACKAGING / "time-wait-sync-cap.conf").read_text())
    assert set(cap) == {"Service"}
    assert 30 <= int(values(cap, "Service", "TimeoutStartSec")[0]) <= 300
    text = (PACKAGING / "pi-install.sh").read_text()
    assert "systemd-time-wait-sync.service.d" in text and "time-wait-sync-cap.conf" in text


def test_daily_backup_timer(rendered: tuple[Path, Path]) -> None:
    path, prefix = rendered
    timer = parse_unit((path.parent / "autotrader-backup.timer").read_text())
    assert values(timer, "Timer", "Persistent") == ["true"]  # a day missed while off: at boot
    assert values(timer, "Timer", "OnCalendar")
    assert values(timer, "Install", "WantedBy") == ["timers.target"]
    service = parse_unit((path.parent / "autotrader-backup.service").read_text())
    assert values(service, "Service", "Type") == ["oneshot"]
    exec_start = values(service, "Service", "ExecStart")[0].split()
    assert exec_start[:2] == [str(prefix / "venv/bin/autotrader"), "backup"]
    assert "--keep" in exec_start
    kiosk = parse_unit(path.read_text())
    assert values(service, "Service", "User") == values(kiosk, "Service", "User")


def test_env_file_only_holds_comments_and_assignments() -> None:
    for n, line in enumerate((PACKAGING / "autotrader.env").read_text().splitlines(), 1):
        s = line.strip()
        assert not s or s.startswith("#") or re.match(r"^[A-Z_][A-Z0-9_]*=\S*$", s), (n, line)


def test_desktop_entry() -> None:
    path = PACKAGING / "autotrader.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(path)
    main = entry["Desktop Entry"]
    assert main["Type"] == "Application" and main["Name"] == "AutoTrader"
    assert main["Exec"].split()[:2] == ["autotrader", "run"]
    assert entry["Desktop Action kiosk"]["Exec"].split() == ["autotrader", "run", "--kiosk"]
    assert (PACKAGING / f"{main['Icon']}.svg").is_file()
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def _apt_packages() -> set[str]:
    text = (PACKAGING / "pi-install.sh").read_text()
    blocks = re.findall(r"^APT_\w+=\((.*?)\)", text, re.S | re.M)
    assert blocks, "no APT_* package list found"
    return {w for b in blocks for w in b.split()}


def test_pi_install_brings_every_qt_module_the_app_imports() -> None:
    """Each PySide6 module used under app/ must come from a Debian python3-pyside6.* package
    on the Pi (the venv sees only Debian's PySide6 there)."""
    used: set[str] = set()
    for f in (ROOT / "app").rglob("*.py"):
        src = f.read_text(encoding="utf-8")
        used |= set(re.findall(r"PySide6\.(Qt\w+)", src))
        for names in re.findall(r"from PySide6 import \(?([\w\s,]+)\)?", src):
            used |= {n.strip() for n in names.split(",") if n.strip().startswith("Qt")}
    packages = _apt_packages()
    missing = sorted(m for m in used if f"python3-pyside6.{m.lower()}" not in packages)
    assert not missing, f"add to APT_PACKAGES in pi-install.sh: {missing}"
    assert "python3-pyqtgraph" in packages and "python3-venv" in packages


def test_render_mode_refuses_unknown_options(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(PACKAGING / "pi-install.sh"), "--bogus"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "unknown option --bogus" in r.stderr


def test_pi_requirements_leave_the_qt_stack_to_debian() -> None:
    r = subprocess.run([sys.executable, str(PACKAGING / "requirements_without_qt.py"),
                        str(ROOT / "pyproject.toml")], capture_output=True, text=True, check=True)
    reqs = r.stdout.split("\n")
    names = {re.split(r"[<>=!~ ;]", q)[0].lower() for q in reqs if q}
    assert not any(n.startswith(("pyside6", "pyqtgraph", "shiboken6")) for n in names)
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    others = [d for d in declared if not d.lower().startswith(("pyside6", "pyqtgraph"))]
    assert [q for q in reqs if q] == others  # the rest, pins and markers untouched


def test_a_built_wheel_carries_the_qml_and_the_plugins(tmp_path: Path) -> None:
    """A non-editable install (the Pi's venv, any `pip install .`) finds the QML next to the
    installed packages, as app/ui/qml.py expects: the wheel must contain them."""
    import shutil
    import zipfile

    # Built from a copy: setuptools writes build/ and the egg-info inside the tree it builds,
    # and CI makes the compat virtualenv (an editable install, the same egg-info) meanwhile.
    tree = tmp_path / "src"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                        str(tmp_path), str(tree)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and ("network" in r.stderr.lower() or "connection" in r.stderr.lower()):
        pytest.skip(f"cannot fetch the build backend: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("autotrader-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "resources").rglob("*.qml")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "algorithm").glob("*.py")}
    assert expected and expected <= names, sorted(expected - names)


def test_desktop_install_for_the_current_user(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "autotrader"
    if not exe.exists():
        pytest.skip("no autotrader program in this environment")
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "share"))
    script = str(PACKAGING / "install-desktop.sh")
    subprocess.run(["bash", script, "--exe", str(exe)], env=env, check=True, timeout=30,
                   capture_output=True)
    entry_path = tmp_path / "share/applications/autotrader.desktop"
    assert (tmp_path / "share/icons/hicolor/scalable/apps/autotrader.svg").is_file()
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(entry_path)
    cmd = entry["Desktop Entry"]["Exec"].split()
    assert cmd == [str(exe.resolve()), "run"]
    # The program the menu starts is a working AutoTrader.
    r = subprocess.run([cmd[0], "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("autotrader ")
    if shutil.which("desktop-file-validate"):
        v = subprocess.run(["desktop-file-validate", str(entry_path)], capture_output=True,
                           text=True)
        assert v.returncode == 0 and not v.stdout.strip(), v.stdout
    subprocess.run(["bash", script, "--remove"], env=env, check=True, timeout=30,
                   capture_output=True)
    assert not entry_path.exists()


@pytest.mark.parametrize(("deg", "qt", "matrix"), [
    ("90", "90", "0 -1 1 1 0 0"), ("180", "180", "-1 0 1 0 -1 1"), ("270", "-90", "0 1 0 -1 0 1"),
    ("0", "0", "1 0 0 0 1 0"),
])
def test_rotate_writes_picture_and_touch_together(tmp_path: Path, deg: str, qt: str,
                                                  matrix: str) -> None:
    out = tmp_path / "units"
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(["bash", str(PACKAGING / "pi-install.sh"), "--prefix", str(tmp_path / "opt"),
                    "--rotate", deg, "--render-units", str(out)], check=True, timeout=30, env=env)
    lines = (out / "autotrader.env").read_text().splitlines()
    live = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert live == {"QT_QPA_EGLFS_ROTATION": qt, "QT_QPA_LIBINPUT_TOUCH_MATRIX": matrix}
    # The file is still one systemd reads (one assignment a line, the matrix in one value).
    for line in lines:
        assert not line or line.startswith("#") or re.match(r"^[A-Z_][A-Z0-9_]*=.+$", line)
    # No event device is named anywhere: libinput finds the touchscreen itself.
    assert "/dev/input/event" not in "\n".join(lines)


def test_rotate_refuses_what_qt_cannot_do(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(PACKAGING / "pi-install.sh"), "--rotate", "45",
                        "--render-units", str(tmp_path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "0, 90, 180 or 270" in r.stderr


def test_menu_entry_runs_on_wayland_first(tmp_path: Path) -> None:
    """The Exec line pi-install.sh writes: native Wayland on the desktop (qt6-wayland), X11 as
    the fallback, pyqtgraph on PySide6; still a valid desktop entry."""
    text = (PACKAGING / "pi-install.sh").read_text()
    m = re.search(r'^sed -i "(s\|\^Exec=autotrader\|.*?)" \\\n', text, re.M)
    assert m, "the menu entry's Exec rewrite was not found"
    expr = m.group(1).replace('\\"', '"').replace("$VENV", "/opt/autotrader/venv")
    entry = tmp_path / "autotrader.desktop"
    shutil.copy(PACKAGING / "autotrader.desktop", entry)
    subprocess.run(["sed", "-i", expr, str(entry)], check=True)
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.optionxform = str
    parsed.read(entry)
    import shlex

    argv = shlex.split(parsed["Desktop Entry"]["Exec"])
    assert argv == ["env", "QT_QPA_PLATFORM=wayland;xcb", "PYQTGRAPH_QT_LIB=PySide6",
                    "/opt/autotrader/venv/bin/autotrader", "run"]
    assert "qt6-wayland" in _apt_packages()
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


@pytest.mark.parametrize(("target", "console_boot", "dm", "plan"), [
    ("multi-user.target", "0", "0", "enable"),          # Lite: enable and start now
    ("multi-user.target", "1", "0", "enable"),
    ("multi-user.target", "0", "1", "enable"),          # a DM installed, not booted to
    ("graphical.target", "0", "1", "install-only"),     # desktop: never behind its back
    ("graphical.target", "1", "1", "enable-reboot"),    # switch, then ask for a reboot
    # graphical.target with no display manager: systemd's own default when an image never
    # set one; nothing takes the screen, so it is a console boot
    ("graphical.target", "0", "0", "enable"),
    ("unknown", "0", "0", "install-only"),
    ("unknown", "0", "1", "install-only"),
])
def test_kiosk_plan_on_desktop_and_lite_images(target: str, console_boot: str, dm: str,
                                               plan: str) -> None:
    text = (PACKAGING / "pi-install.sh").read_text()
    func = re.search(r"^kiosk_plan\(\) \{.*?^\}", text, re.S | re.M)
    assert func, "kiosk_plan() not found"
    r = subprocess.run(["bash", "-c", f'{func.group(0)}\nkiosk_plan "$1" "$2" "$3"', "_", target,
                        console_boot, dm], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == plan
    # Each plan is acted on: install-only never enables or starts the kiosk.
    assert 'PLAN=$(kiosk_plan "$BOOT_TARGET" "$CONSOLE_BOOT" "$(has_display_manager)")' in text
    body = re.search(r'^case \$PLAN in.*?^esac', text, re.S | re.M)
    assert body and "install-only)" in body.group(0) and "enable-reboot)" in body.group(0)
    only = body.group(0).split("install-only)")[1].split(";;")[0]
    assert "disable_kiosk" in only and "START=0" in only and "enable_units" not in only


@pytest.mark.parametrize(("recorded", "now", "set_to"), [
    ("graphical.target", "multi-user.target", "graphical.target"),  # --console-boot undone
    ("multi-user.target", "multi-user.target", None),               # Lite: nothing to undo
    ("graphical.target", "graphical.target", None),
    ("", "multi-user.target", None),                                # from before this record
    ("rm -rf /", "multi-user.target", None),                        # not a target name
])
def test_uninstall_restores_the_boot_target(tmp_path: Path, recorded: str, now: str,
                                            set_to: str | None) -> None:
    text = (PACKAGING / "pi-uninstall.sh").read_text()
    func = re.search(r"^restore_boot_target\(\) \{.*?^\}", text, re.S | re.M)
    assert func and 'restore_boot_target "$PREV_TARGET"' in text
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls"
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                                    f'[ "$1" = get-default ] && echo {now}\nexit 0\n')
    (fake / "systemctl").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    subprocess.run(["bash", "-c", f'{func.group(0)}\nrestore_boot_target "$1"', "_", recorded],
                   env=env, check=True, capture_output=True, text=True)
    calls = log.read_text().splitlines() if log.exists() else []
    sets = [c for c in calls if c.startswith("set-default")]
    assert sets == ([f"set-default {set_to}"] if set_to else [])


def test_install_records_the_boot_target_once() -> None:
    """pi-install.sh keeps the target from the first install: a re-run after --console-boot
    must not record the console as the one to go back to."""
    text = (PACKAGING / "pi-install.sh").read_text()
    assert re.search(r"PREV_TARGET=\$\(sed -n 's/\^PREV_TARGET=//p' \"\$PREFIX/install.env\"\)",
                     text)
    assert "PREV_TARGET=%s" in text
    # Recorded before the boot target is changed below.
    assert text.index("PREV_TARGET=%s") < text.index("systemctl set-default multi-user.target")


def test_first_frame_marker_lives_in_the_runtime_directory(rendered: tuple[Path, Path]) -> None:
    """pi-upgrade.sh reads the marker path from the unit; inside RuntimeDirectory= systemd
    removes it whenever the service stops, so a marker never outlives the window that wrote
    it, and the app (User=) can write there."""
    unit = parse_unit(rendered[0].read_text())
    env = dict(v.split("=", 1) for v in values(unit, "Service", "Environment"))
    ready = Path(env["AUTOTRADER_READY_FILE"])
    runtime = values(unit, "Service", "RuntimeDirectory")
    assert runtime == ["autotrader"] and ready.parent == Path("/run") / runtime[0]
    upgrade = (PACKAGING / "pi-upgrade.sh").read_text()
    assert "s/^Environment=AUTOTRADER_READY_FILE=//p" in upgrade
