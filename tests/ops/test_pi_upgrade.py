"""packaging/pi-upgrade.sh: stop, backup (a failure aborts), build from a clean export into a
versioned venv, switch the link, doctor, start, roll back. Run for real against a throw-away
git checkout, with stand-ins on PATH for what needs root, the network or a Pi: systemctl (a
state file), python3 (venv and pip that only record what they were asked) and the installed
``autotrader`` (backup and doctor outcomes chosen by the test). A few seconds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"

pytestmark = pytest.mark.skipif(not shutil.which("git"), reason="git not installed")

FAKE_PYTHON = r"""#!/bin/bash
# python3 stand-in: venv creation, pip and sysconfig are faked; scripts run on the real Python.
set -e
self_dir=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = -m ] && [ "$2" = venv ]; then
  dir=${@: -1}
  mkdir -p "$dir/bin" "$dir/lib/site-packages"
  cp "$0" "$dir/bin/python"
  exit 0
fi
if [ "$1" = -m ] && [ "$2" = pip ]; then
  venv=$(dirname "$self_dir")
  echo "pip ${*:3}" >> "$venv/pip.log"
  if [[ " $* " == *" --no-deps "* ]]; then
    src=${@: -1}
    (cd "$src" && find . -type f | sort) > "$venv/installed-files"
    sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$src/app/__init__.py" > "$venv/version"
    sed "s|@VENV@|$venv|" "$FAKE_STATE/autotrader.in" > "$venv/bin/autotrader"
    chmod +x "$venv/bin/autotrader"
  fi
  exit 0
fi
if [ "$1" = -c ]; then echo "$(dirname "$self_dir")/lib/site-packages"; exit 0; fi
if [[ " $* " == *" app.ops.display list "* ]]; then [ ! -e "$FAKE_STATE/no-screen" ]; exit; fi
exec "$REAL_PYTHON" "$@"
"""

FAKE_AUTOTRADER = r"""#!/bin/bash
venv=@VENV@
v=$(cat "$venv/version")
case "$1" in
  --version) echo "autotrader $v" ;;
  backup)
    echo "backup $* by $v" >> "$FAKE_STATE/calls"
    [ -e "$FAKE_STATE/backup-fails" ] && { echo "error: disk full"; exit 1; }
    [ -e "$FAKE_STATE/no-data" ] && { echo "nothing to back up: no DB in x"; exit 1; }
    echo "backup written" ;;
  doctor)
    json=0; [[ " $* " == *" --json "* ]] && json=1
    [ "$json" = 1 ] || echo "doctor by $v" >> "$FAKE_STATE/calls"
    if [ -e "$FAKE_STATE/doctor-fails-$v" ]; then
      [ "$json" = 1 ] && { echo '[{"check": "system DB", "level": "FAIL"}]'; exit 1; }
      echo "FAIL  system DB"; exit 1
    fi
    if [ -e "$FAKE_STATE/no-kms" ]; then
      [ "$json" = 1 ] && { echo '[{"check": "config", "level": "ok"},
                                  {"check": "screen output", "level": "FAIL"}]'; exit 1; }
      echo "FAIL  screen output  no display connector at all"; exit 1
    fi
    echo "everything looks right" ;;
esac
"""

FAKE_SYSTEMCTL = r"""#!/bin/bash
# systemctl stand-in: "active" is a file; a start of a version in crash-<v> dies at once; the
# window of a version draws its first frame (the marker of app/ops/kioskready.py, naming the
# venv) unless no-frame-<v>; restarts-<v> holds the NRestarts a started version reports.
echo "systemctl $*" >> "$FAKE_STATE/calls"
case "$1" in
  is-active) [ -e "$FAKE_STATE/active" ] ;;
  stop) rm -f "$FAKE_STATE/active" "$FAKE_READY" ;;
  show) v=$(cat "$FAKE_PREFIX/venv/version"); cat "$FAKE_STATE/restarts-$v" 2>/dev/null || echo 0 ;;
  start)
    v=$(cat "$FAKE_PREFIX/venv/version")
    [ "$2" = --no-block ] && { echo "queued $v" >> "$FAKE_STATE/calls"; exit 0; }
    # As systemd: starting an active unit does nothing (whatever the link points at now).
    [ -e "$FAKE_STATE/active" ] && { echo "already active" >> "$FAKE_STATE/calls"; exit 0; }
    echo "started $v" >> "$FAKE_STATE/calls"
    [ -e "$FAKE_STATE/crash-$v" ] || touch "$FAKE_STATE/active"
    if [ -e "$FAKE_STATE/crash-$v" ] || [ -e "$FAKE_STATE/no-frame-$v" ]; then exit 0; fi
    mkdir -p "$(dirname "$FAKE_READY")"
    printf 'pid=1\nprefix=%s\nversion=%s\ntime=T\n' "$(readlink -f "$FAKE_PREFIX/venv")" "$v" \
      > "$FAKE_READY" ;;
  daemon-reload) ;;
esac
"""

UNIT = """[Service]
Environment=AUTOTRADER_READY_FILE={ready}
ExecStartPre=+{prefix}/venv/bin/python -I -m app.ops.display prepare --out /run/autotrader/x
"""


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.src = tmp / "checkout"
        self.prefix = tmp / "opt"
        self.state = tmp / "state"
        self.bin = tmp / "bin"
        self.unit = tmp / "systemd" / "autotrader.service"
        self.ready = tmp / "run-autotrader" / "ready"
        self.etc = tmp / "etc"
        for d in (self.src / "app", self.src / "packaging", self.src / "algorithm",
                  self.state, self.bin, tmp / "run-systemd", self.unit.parent, self.etc):
            d.mkdir(parents=True)
        self.unit.write_text(UNIT.format(ready=self.ready, prefix=self.prefix))
        for name in ("pi-upgrade.sh", "requirements_without_qt.py", "pi-constraints.txt"):
            shutil.copy2(PACKAGING / name, self.src / "packaging" / name)
        shutil.copy2(ROOT / "pyproject.toml", self.src / "pyproject.toml")
        (self.state / "autotrader.in").write_text(FAKE_AUTOTRADER)
        for name, text in (("python3", FAKE_PYTHON), ("systemctl", FAKE_SYSTEMCTL)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.git("init", "-q")
        self.release("1.0.0", plugins=("sma.py", "old_plugin.py"))

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=self.src, check=True, capture_output=True,
                              text=True).stdout.strip()

    def release(self, version: str, plugins: tuple[str, ...]) -> None:
        (self.src / "app/__init__.py").write_text(f'__version__ = "{version}"\n')
        for p in (self.src / "algorithm").glob("*.py"):
            p.unlink()
        for p in plugins:
            (self.src / "algorithm" / p).write_text("class Algorithm: ...\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", version)

    def run(self, *args: str, systemd: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, PATH=f"{self.bin}:{os.environ['PATH']}", FAKE_STATE=str(self.state),
                   FAKE_PREFIX=str(self.prefix), REAL_PYTHON=sys.executable,
                   AUTOTRADER_UPGRADE_SETTLE="0", AUTOTRADER_UPGRADE_FIRST_FRAME="2",
                   AUTOTRADER_UNIT_FILE=str(self.unit), AUTOTRADER_ETC=str(self.etc),
                   FAKE_READY=str(self.ready),
                   AUTOTRADER_SYSTEMD_RUN=str(self.tmp / ("run-systemd" if systemd else "none")))
        return subprocess.run(["bash", str(self.src / "packaging/pi-upgrade.sh"), "--prefix",
                               str(self.prefix), "--user", subprocess.run(
                                   ["id", "-un"], capture_output=True, text=True).stdout.strip(),
                               *args], env=env, capture_output=True, text=True, timeout=60)

    @property
    def current(self) -> str:
        return (self.prefix / "venv/version").read_text().strip()

    def calls(self) -> list[str]:
        f = self.state / "calls"
        return f.read_text().splitlines() if f.exists() else []


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    first = r.run("--start")
    assert first.returncode == 0, first.stdout + first.stderr
    assert r.current == "1.0.0" and (r.state / "active").exists()
    (r.state / "calls").write_text("")
    return r


def test_upgrade_switches_the_link_to_a_new_versioned_venv(rig: Rig) -> None:
    old = os.readlink(rig.prefix / "venv")
    rig.release("1.1.0", plugins=("sma.py",))  # a plugin deleted from algorithm/
    r = rig.run()
    assert r.returncode == 0, r.stdout + r.stderr
    assert rig.current == "1.1.0"
    link = os.readlink(rig.prefix / "venv")
    assert link != old and re.fullmatch(r"venvs/1\.1\.0-[0-9a-f]{7,}-\d{8}T\d{6}Z", link)
    assert (rig.prefix / old).is_dir()  # the previous venv is kept for a rollback
    calls = rig.calls()
    # In order: stop, backup by the old version, doctor by the new one, start.
    order = [calls.index(c) for c in ("systemctl stop autotrader.service",
                                      "backup backup --archive by 1.0.0", "doctor by 1.1.0",
                                      "started 1.1.0")]
    assert order == sorted(order), calls
    # Built from a clean export of the commit: the deleted plugin is gone, the checkout has
    # no build output, dependencies were pinned.
    files = (rig.prefix / "venv/installed-files").read_text().split()
    assert "./algorithm/sma.py" in files and "./algorithm/old_plugin.py" not in files
    assert not any(p.name == "build" or p.name.endswith(".egg-info")
                   for p in rig.src.iterdir())
    pip = (rig.prefix / "venv/pip.log").read_text()
    assert "-c " in pip and "pi-constraints.txt" in pip


def test_a_failed_backup_stops_the_upgrade_and_changes_nothing(rig: Rig) -> None:
    link = os.readlink(rig.prefix / "venv")
    (rig.state / "backup-fails").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1
    assert "backup failed" in r.stderr and "nothing changed" in r.stderr
    assert os.readlink(rig.prefix / "venv") == link and rig.current == "1.0.0"
    assert len(list((rig.prefix / "venvs").iterdir())) == 1
    assert rig.calls()[-1] == "started 1.0.0" and (rig.state / "active").exists()


def test_no_data_yet_is_not_a_failed_backup(rig: Rig) -> None:
    (rig.state / "no-data").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 0, r.stderr
    assert rig.current == "1.1.0"


def test_doctor_failure_rolls_back(rig: Rig) -> None:
    link = os.readlink(rig.prefix / "venv")
    (rig.state / "doctor-fails-1.1.0").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1
    assert "rolled back" in r.stderr
    assert os.readlink(rig.prefix / "venv") == link and rig.current == "1.0.0"
    assert "started 1.1.0" not in rig.calls() and rig.calls()[-1] == "started 1.0.0"
    assert "restore the backup taken above" in r.stderr  # one was taken


def test_no_backup_taken_no_restore_advice(rig: Rig) -> None:
    (rig.state / "no-data").touch()
    (rig.state / "doctor-fails-1.1.0").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1 and "rolled back" in r.stderr
    assert "restore the backup" not in r.stderr


def test_a_service_that_dies_after_the_start_rolls_back(rig: Rig) -> None:
    (rig.state / "crash-1.1.0").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1 and "rolled back" in r.stderr
    assert rig.current == "1.0.0"
    assert rig.calls()[-2:] == ["systemctl start autotrader.service", "started 1.0.0"]
    assert (rig.state / "active").exists()


def test_backup_can_go_to_a_second_place(rig: Rig, tmp_path: Path) -> None:
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run("--dest", str(tmp_path / "usb"))
    assert r.returncode == 0, r.stderr
    assert f"backup backup --archive --dest {tmp_path / 'usb'} by 1.0.0" in rig.calls()


def test_old_venvs_are_pruned_but_the_previous_one_kept(rig: Rig) -> None:
    for n in range(1, 4):
        rig.release(f"1.{n}.0", plugins=("sma.py",))
        assert rig.run("--keep", "2").returncode == 0
    names = sorted(p.name for p in (rig.prefix / "venvs").iterdir())
    assert len(names) == 2 and rig.current == "1.3.0"
    assert any(n.startswith("1.2.0-") for n in names)


def test_an_install_from_before_versioned_venvs_is_taken_over(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    legacy = r.prefix / "venv"
    (legacy / "bin").mkdir(parents=True)
    (legacy / "version").write_text("0.9.0\n")
    (legacy / "bin/autotrader").write_text(FAKE_AUTOTRADER.replace("@VENV@", str(legacy)))
    (legacy / "bin/autotrader").chmod(0o755)
    res = r.run(systemd=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (r.prefix / "venv").is_symlink() and r.current == "1.0.0"
    assert (r.prefix / "venvs/legacy/version").read_text().strip() == "0.9.0"
    assert "backup backup --archive by 0.9.0" in r.calls()


def test_uncommitted_changes_are_not_installed_and_said(rig: Rig) -> None:
    (rig.src / "app/__init__.py").write_text('__version__ = "9.9.9"\n')
    r = rig.run()
    assert r.returncode == 0
    assert "uncommitted changes" in r.stdout and rig.current == "1.0.0"


def test_constraints_pin_every_runtime_dependency_within_pyproject() -> None:
    from packaging.requirements import Requirement

    pins = {}
    for line in (PACKAGING / "pi-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    r = subprocess.run([sys.executable, str(PACKAGING / "requirements_without_qt.py"),
                        str(ROOT / "pyproject.toml")], capture_output=True, text=True, check=True)
    for line in filter(None, r.stdout.splitlines()):
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} has no pin in pi-constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (line, pins[name])


def test_no_screen_now_is_no_reason_to_roll_back(rig: Rig) -> None:
    """A monitor switched off during the upgrade: the service is left to wait for it."""
    (rig.state / "no-screen").touch()
    (rig.state / "crash-1.1.0").touch()  # would look like a failed start
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 0, r.stderr
    assert rig.current == "1.1.0" and "no screen connected now" in r.stdout
    assert rig.calls()[-1] == "queued 1.1.0"


def test_no_first_frame_from_the_new_version_rolls_back(rig: Rig) -> None:
    """The service runs but the new version's window never draws (a QML error, a GL problem):
    the marker never names the new venv, and the previous version is put back and started."""
    link = os.readlink(rig.prefix / "venv")
    (rig.state / "no-frame-1.1.0").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1 and "no first frame within 2 s" in r.stderr, r.stdout + r.stderr
    assert os.readlink(rig.prefix / "venv") == link and rig.current == "1.0.0"
    # The new version still ran (hung): stopped first, so the old one really starts.
    assert rig.calls()[-3:] == ["systemctl stop autotrader.service",
                                "systemctl start autotrader.service", "started 1.0.0"]


def test_the_first_frame_is_waited_for_and_said(rig: Rig) -> None:
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "first frame shown" in r.stdout
    # The marker names the venv in use (the link resolved), not merely "a" venv.
    marker = dict(line.split("=", 1) for line in rig.ready.read_text().splitlines())
    assert marker["prefix"] == str((rig.prefix / "venv").resolve())


def test_a_stale_marker_of_the_old_version_is_no_first_frame(rig: Rig) -> None:
    """A marker left by the version before (same path) must not pass for the new one."""
    (rig.state / "no-frame-1.1.0").touch()
    rig.ready.parent.mkdir(parents=True, exist_ok=True)
    old = (rig.prefix / "venv").resolve()
    rig.release("1.1.0", plugins=("sma.py",))
    rig.ready.write_text(f"pid=9\nprefix={old}\nversion=1.0.0\ntime=T\n")
    r = rig.run()
    assert r.returncode == 1 and "no first frame" in r.stderr
    assert rig.current == "1.0.0"


def test_a_service_that_restarted_during_the_settle_time_rolls_back(rig: Rig) -> None:
    """Up again by the check, but systemd restarted it: it crashed after its first frame."""
    (rig.state / "restarts-1.1.0").write_text("2\n")
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1 and "restarted 2 times" in r.stderr
    assert rig.current == "1.0.0"


def test_a_unit_from_before_the_marker_is_not_waited_for(rig: Rig) -> None:
    rig.unit.write_text("[Service]\nExecStart=/opt/autotrader/venv/bin/autotrader run\n")
    (rig.state / "no-frame-1.1.0").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 0, r.stderr
    assert "predates the first-frame marker" in r.stdout and rig.current == "1.1.0"


def test_rollback_to_a_legacy_install_puts_its_unit_back(tmp_path: Path) -> None:
    """An install from before versioned venvs, upgraded by the new pi-install.sh (which saved
    the old unit and moved eglfs.json aside): when the new version fails, the legacy venv is
    used again with the unit it ran with, not the new one whose screen step it lacks."""
    r = Rig(tmp_path)
    legacy = r.prefix / "venv"
    (legacy / "bin").mkdir(parents=True)
    (legacy / "lib/python3.13/site-packages/app").mkdir(parents=True)  # no app/ops/display.py
    (legacy / "version").write_text("0.9.0\n")
    (legacy / "bin/autotrader").write_text(FAKE_AUTOTRADER.replace("@VENV@", str(legacy)))
    (legacy / "bin/autotrader").chmod(0o755)
    legacy_unit = "[Service]\nExecStart=/opt/autotrader/venv/bin/autotrader run --kiosk\n"
    (r.prefix / "legacy").mkdir()
    (r.prefix / "legacy/autotrader.service").write_text(legacy_unit)
    (r.etc / "eglfs.json.old").write_text('{"device": "/dev/dri/card1"}\n')
    (r.state / "active").touch()
    (r.state / "doctor-fails-1.0.0").touch()
    res = r.run()
    assert res.returncode == 1 and "rolled back to legacy" in res.stderr, res.stdout + res.stderr
    assert "its own unit is back" in res.stderr
    assert r.unit.read_text() == legacy_unit
    assert (r.etc / "eglfs.json").read_text() == '{"device": "/dev/dri/card1"}\n'
    assert r.current == "0.9.0" and os.readlink(r.prefix / "venv") == "venvs/legacy"
    calls = r.calls()
    assert calls.index("systemctl daemon-reload") < calls.index("started 0.9.0")


def test_rollback_between_versioned_venvs_keeps_the_unit(rig: Rig) -> None:
    """A saved legacy unit is only for the legacy venv: a newer previous venv keeps the unit."""
    (rig.prefix / "legacy").mkdir()
    (rig.prefix / "legacy/autotrader.service").write_text("[Service]\nExecStart=old\n")
    site = (rig.prefix / "venv").resolve() / "lib/python3.13/site-packages/app/ops"
    site.mkdir(parents=True)
    (site / "display.py").write_text("")
    before = rig.unit.read_text()
    (rig.state / "doctor-fails-1.1.0").touch()
    rig.release("1.1.0", plugins=("sma.py",))
    r = rig.run()
    assert r.returncode == 1 and "rolled back" in r.stderr
    assert rig.unit.read_text() == before and "its own unit" not in r.stderr


def test_screen_only_doctor_failures_do_not_roll_back(tmp_path: Path) -> None:
    """No KMS driver (an image built in a chroot, a Pi without dtoverlay=vc4-kms-v3d): doctor
    fails on the screen, which no version can fix; the first install stays and says so."""
    r = Rig(tmp_path)
    (r.state / "no-kms").touch()
    res = r.run(systemd=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "only the screen checks failed" in res.stdout and r.current == "1.0.0"
