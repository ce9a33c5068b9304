#!/usr/bin/env bash
# The Pi's software stack on Debian 13 (trixie) itself, in a chroot: Debian's own PySide6 6.8.2
# and pyqtgraph under the app and its UI tests, and the install, upgrade, rollback and
# uninstall scripts run as on a Pi. Not run by CI: it takes 30-40 minutes, needs root,
# debootstrap and the package registries (Debian's and PyPI's). Outside DIR it changes
# nothing but the mounts it makes under DIR (undone when it ends).
#
#   sudo bash packaging/debian-chroot-check.sh [--chroot DIR] [--seconds N] [--only STEPS]
#
#   --chroot DIR  where the Debian 13 tree is (made with debootstrap when missing; default
#                 /var/tmp/autotrader-trixie); keep it between runs, a second run is quicker
#   --seconds N   how long the memory step runs the window (default 600)
#   --only STEPS  some of: install,ui,memory,upgrade,legacy,uninstall (comma-separated, in
#                 that order; default all)
#
# Steps:
#   install    debootstrap trixie (minbase) when needed; this checkout's HEAD cloned to
#              /home/pi/AutoTrader (user pi); `sudo bash packaging/pi-install.sh --no-start`
#              exactly as on a Pi (Debian's PySide6 and pyqtgraph, a versioned venv with
#              --system-site-packages, pi-constraints.txt); prints the Debian versions found.
#   ui         tests/ui offscreen on Debian's PySide6, in a venv made like the install's plus
#              pytest, pytest-qt and Debian's python3-pyside6.qttest.
#   memory     the demo window offscreen with bars arriving for N seconds
#              (bench/bench_memory.py --only dashboard): crashes, RSS start/end/slope.
#   upgrade    pi-upgrade.sh with a stand-in systemctl that runs the installed unit's
#              ExecStartPre/ExecStart as systemd would (User=, Environment=, EnvironmentFile=,
#              RuntimeDirectory=), Qt offscreen, and a fake connected DSI screen in
#              /sys/class/drm: a new commit is upgraded to (backup, new venv, doctor, first
#              frame, settle); a commit whose window hangs before its first frame is rolled
#              back and the previous version started again.
#   legacy     an install from before versioned venvs (pi-install.sh of commit b393a3e), then
#              today's pi-install.sh with a commit whose doctor fails: the upgrade rolls back
#              to venvs/legacy and puts the old unit and eglfs.json back; the old unit's app
#              starts.
#   uninstall  pi-uninstall.sh: units, venvs, /etc/autotrader gone, the data kept.
#
# Not checked here (no PID 1, no GPU, no panel in a chroot): systemd itself (ordering,
# RestartSteps, the boot target), eglfs/KMS on a real screen, touch, plymouth. README's
# "Raspberry Pi" checklist covers those on the device.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CHROOT=/var/tmp/autotrader-trixie
SECONDS_MEM=600
ONLY=install,ui,memory,upgrade,legacy,uninstall
LEGACY_COMMIT=b393a3e
while [ $# -gt 0 ]; do
  case "$1" in
    --chroot) CHROOT=${2:?}; shift 2 ;;
    --seconds) SECONDS_MEM=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run me as root (debootstrap, chroot, mounts)" >&2; exit 2; }
case "$CHROOT" in "$REPO"|"$REPO"/*) echo "--chroot must be outside the checkout" >&2; exit 2 ;; esac
want() { [[ ",$ONLY," == *",$1,"* ]]; }
say() { echo; echo "==> [$(date -u +%H:%M:%S)] $*"; }
RESULTS=()
FAILED=0
# result OK TEXT: OK is a command's status (0: as expected).
result() {
  local word=ok
  if [ "$1" != 0 ]; then word=FAIL; FAILED=1; fi
  RESULTS+=("$word  $2"); echo "RESULT: $word  $2"
}
expect() { [ "$1" = "$2" ] && echo 0 || echo 1; }

# --- the chroot and its mounts ----------------------------------------------------------------
if [ ! -f "$CHROOT/etc/debian_version" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  say "debootstrap trixie into $CHROOT"
  mkdir -p "$CHROOT"
  debootstrap --variant=minbase trixie "$CHROOT"   # debootstrap's default Debian mirror
fi
MOUNTS=()
mnt() {  # mnt TARGET ARGS...: mount once, remembered for the clean-up
  local target=$CHROOT$1; shift
  mountpoint -q "$target" && return 0
  mkdir -p "$target"
  mount "$@" "$target"
  MOUNTS=("$target" "${MOUNTS[@]}")
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local m
  # The stand-in service, if a step left it running.
  if [ -f "$CHROOT/run/check-systemd/pid" ]; then
    kill "$(cat "$CHROOT/run/check-systemd/pid")" 2>/dev/null || true
  fi
  for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
mnt /proc -t proc proc
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs -o mode=1777,nosuid,nodev shm  # multiprocessing's shared memory
mnt /sys --bind -o ro /sys
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
# The host's own certificate authorities (a proxy in front of the registries), if any.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$CHROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$CHROOT/usr/local/share/ca-certificates/"
  chroot "$CHROOT" sh -c 'command -v update-ca-certificates >/dev/null && update-ca-certificates >/dev/null' || true
fi
in_root() { chroot "$CHROOT" env -i PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "$@"; }
as_pi() {
  chroot "$CHROOT" runuser -u pi -- env -i PATH=/usr/bin:/bin HOME=/home/pi \
    PYQTGRAPH_QT_LIB=PySide6 QT_QPA_PLATFORM=offscreen QSG_RENDER_LOOP=basic "$@"
}
CLONE=/home/pi/AutoTrader
git_pi() { as_pi git -c user.name=check -c user.email=check@localhost -C "$CLONE" "$@"; }

# --- install -----------------------------------------------------------------------------------
if want install; then
  in_root sh -c 'id pi >/dev/null 2>&1 || useradd -m -s /bin/bash pi'
  say "cloning $(git -C "$REPO" rev-parse --short HEAD) into $CLONE"
  rm -rf "$CHROOT$CLONE"
  git clone -q "$REPO" "$CHROOT$CLONE"
  in_root chown -R pi:pi "$CLONE"
  say "pi-install.sh --no-start (as on a Pi)"
  rc=0; in_root env SUDO_USER=pi bash "$CLONE/packaging/pi-install.sh" --no-start || rc=$?
  result "$rc" "install: exit $rc, $(readlink "$CHROOT/opt/autotrader/venv" || echo 'no venv link')"
  say "Debian packages found"
  # shellcheck disable=SC2016  # dpkg-query's own fields
  in_root dpkg-query -W -f '${Package} ${Version}\n' python3 python3-pyside6.qtcore \
    python3-pyside6.qtquick python3-pyside6.qtquickwidgets python3-pyside6.qtqml \
    python3-pyqtgraph libqt6core6t64 libqt6quick6 qt6-qpa-plugins python3-numpy \
    python3-pyqt6 python3-pyqt5 2>/dev/null || true
  in_root /opt/autotrader/venv/bin/python -c 'import PySide6, pyqtgraph, numpy, sys; print("venv:", sys.version.split()[0], "PySide6", PySide6.__version__, "Qt", PySide6.QtCore.qVersion(), "pyqtgraph", pyqtgraph.__version__, "numpy", numpy.__version__)' || true
fi

# --- ui ------------------------------------------------------------------------------------------
UIVENV=/home/pi/uitest-venv
make_uitest_venv() {
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-pyside6.qttest >/dev/null
  as_pi bash -c "set -e; cd $CLONE
    [ -x $UIVENV/bin/python ] || python3 -m venv --system-site-packages $UIVENV
    mapfile -t DEPS < <(python3 packaging/requirements_without_qt.py pyproject.toml)
    $UIVENV/bin/python -m pip install -q -c packaging/pi-constraints.txt \"\${DEPS[@]}\" \
      'pytest>=8,<10' 'pytest-qt>=4.4,<5' 'pytest-timeout>=2.3,<3' 'msgpack>=1.0,<2'"
}
if want ui; then
  say "tests/ui on Debian's PySide6"
  make_uitest_venv
  as_pi "$UIVENV/bin/python" -c 'import PySide6, pyqtgraph; print("PySide6", PySide6.__version__, PySide6.__file__, "pyqtgraph", pyqtgraph.__version__, pyqtgraph.Qt.QT_LIB)'
  rc=0
  as_pi bash -c "cd $CLONE && timeout 1800 $UIVENV/bin/python -X faulthandler -m pytest -q -p no:cacheprovider tests/ui" || rc=$?
  result "$rc" "ui: pytest exit $rc"
fi

# --- memory ------------------------------------------------------------------------------------
if want memory; then
  say "the demo window for $SECONDS_MEM s, bars arriving (bench_memory dashboard)"
  [ -x "$CHROOT$UIVENV/bin/python" ] || make_uitest_venv
  rc=0
  as_pi bash -c "cd $CLONE && $UIVENV/bin/python -X faulthandler bench/bench_memory.py --only dashboard --seconds $SECONDS_MEM" || rc=$?
  result "$rc" "memory: exit $rc (figures above)"
fi

# --- the stand-in systemd (upgrade, legacy) ------------------------------------------------
FAKE_BIN=/usr/local/lib/autotrader-check/bin
install_standin() {
  mkdir -p "$CHROOT$FAKE_BIN" "$CHROOT/run/check-systemd" "$CHROOT/run/systemd-standin"
  cat > "$CHROOT$FAKE_BIN/systemctl" <<'STANDIN'
#!/bin/bash
# systemctl stand-in (debian-chroot-check.sh): runs autotrader.service's ExecStartPre and
# ExecStart as systemd would (User=, Environment=, EnvironmentFile=, RuntimeDirectory=), with
# Qt offscreen. Enough for pi-upgrade.sh: start, stop, is-active, show NRestarts.
UNIT=/etc/systemd/system/autotrader.service
S=/run/check-systemd
echo "systemctl $*" >> $S/calls
pid() { cat $S/pid 2>/dev/null; }
alive() { local p; p=$(pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
key() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
case "$1" in
  is-active) alive ;;
  is-enabled) exit 0 ;;
  show) echo 0 ;;
  daemon-reload|enable|disable|set-default) exit 0 ;;
  stop)
    if alive; then
      kill -TERM "$(pid)"
      for _ in $(seq 60); do alive || break; sleep 0.5; done
    fi
    rm -f $S/pid; rm -rf /run/autotrader ;;
  start)
    alive && exit 0
    user=$(key User); home=$(getent passwd "$user" | cut -d: -f6)
    mkdir -p /run/autotrader; chown "$user:" /run/autotrader; chmod 0700 /run/autotrader
    envs=(PATH=/usr/bin:/bin "HOME=$home" "USER=$user")
    while IFS= read -r line; do envs+=("$line"); done < <(sed -n 's/^Environment=//p' "$UNIT")
    ef=$(key EnvironmentFile); ef=${ef#-}
    if [ -f "$ef" ]; then
      while IFS= read -r line; do envs+=("$line"); done < <(grep -E '^[A-Z_]+=' "$ef")
    fi
    envs+=(QT_QPA_PLATFORM=offscreen QSG_RENDER_LOOP=basic)
    pre=$(key ExecStartPre)
    if [ -n "$pre" ]; then
      if [[ $pre == +* ]]; then
        # shellcheck disable=SC2086
        env -i "${envs[@]}" ${pre#+} >> $S/service.log 2>&1 || { echo "ExecStartPre failed" >&2; exit 1; }
      else
        # shellcheck disable=SC2086
        setpriv --reuid "$user" --regid "$user" --init-groups env -i "${envs[@]}" $pre \
          >> $S/service.log 2>&1 || { echo "ExecStartPre failed" >&2; exit 1; }
      fi
    fi
    # shellcheck disable=SC2046,SC2086
    (cd "$home" && exec setsid setpriv --reuid "$user" --regid "$user" --init-groups \
       env -i "${envs[@]}" $(key ExecStart) >> $S/service.log 2>&1) &
    echo $! > $S/pid ;;
esac
STANDIN
  chmod 755 "$CHROOT$FAKE_BIN/systemctl"
  # A connected 7" DSI panel where the kiosk's screen step and pi-upgrade.sh look for it.
  if ! mountpoint -q "$CHROOT/sys/class"; then
    mnt /sys/class -t tmpfs -o mode=0755 fake-class
  fi
  mkdir -p "$CHROOT/sys/class/drm/card1-DSI-1"
  echo connected > "$CHROOT/sys/class/drm/card1-DSI-1/status"
  echo 800x480 > "$CHROOT/sys/class/drm/card1-DSI-1/modes"
}
SVC_LOG=$CHROOT/run/check-systemd/service.log
step_log() {  # a heading in the stand-in's logs (kept for a look after the run)
  echo "=== $(date -u +%H:%M:%S) $1" | tee -a "$SVC_LOG" >> "$CHROOT/run/check-systemd/calls"
}
# wait_frame SECONDS: the prefix named by the running version's first-frame marker, or "".
wait_frame() {
  local _
  for _ in $(seq "$1"); do
    [ -s "$CHROOT/run/autotrader/ready" ] && break
    sleep 1
  done
  sed -n 's/^prefix=//p' "$CHROOT/run/autotrader/ready" 2>/dev/null || true
}
# upgrade_in_chroot ARGS...: pi-upgrade.sh as root, with the stand-in systemctl first on PATH.
upgrade_in_chroot() {
  chroot "$CHROOT" env -i PATH="$FAKE_BIN:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" \
    HOME=/root TERM=dumb AUTOTRADER_SYSTEMD_RUN=/run/systemd-standin \
    AUTOTRADER_UPGRADE_SETTLE="${SETTLE:-20}" AUTOTRADER_UPGRADE_FIRST_FRAME="${FIRST_FRAME:-90}" \
    bash "$CLONE/packaging/pi-upgrade.sh" "$@"
}
hang_before_first_frame() {  # a commit whose window never draws (stuck in its constructor)
  as_pi python3 - "$CLONE/app/ui/window.py" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n = re.subn(r"(class MainWindow\b.*?def __init__\(self[^)]*\)[^:]*:\n)",
               r"\1        import time; time.sleep(10**6)  # chroot check: hangs before its first frame\n",
               s, count=1, flags=re.S)
assert n == 1, "MainWindow.__init__ not found"
open(p, "w").write(s)
PY
  git_pi commit -q -am "chroot check: the window hangs before its first frame"
}

if want upgrade; then
  say "upgrade with the stand-in systemd and a fake DSI screen"
  install_standin
  step_log upgrade
  git_pi checkout -q -B chroot-check
  git_pi commit -q --allow-empty -m "chroot check: an upgrade"
  before=$(readlink "$CHROOT/opt/autotrader/venv")
  rc=0; upgrade_in_chroot --start || rc=$?
  after=$(readlink "$CHROOT/opt/autotrader/venv")
  frame=$(sed -n 's/^prefix=//p' "$CHROOT/run/autotrader/ready" 2>/dev/null || true)
  ok=$(expect "$rc/$frame" "0//opt/autotrader/$after")
  [ "$before" != "$after" ] || ok=1
  result "$ok" "upgrade: exit $rc, $before -> $after, first frame from ${frame:-nothing}"
  grep -E "autotrader-display|first frame|window shown|Error" "$SVC_LOG" | tail -n 6 || true

  say "upgrade to a version whose window hangs before its first frame"
  hang_before_first_frame
  before=$(readlink "$CHROOT/opt/autotrader/venv")
  rc=0; FIRST_FRAME=60 upgrade_in_chroot || rc=$?
  after=$(readlink "$CHROOT/opt/autotrader/venv")
  frame=$(wait_frame 90)
  running=no; chroot "$CHROOT" "$FAKE_BIN/systemctl" is-active autotrader.service && running=yes
  ok=$(expect "$rc/$after/$running/$frame" "1/$before/yes//opt/autotrader/$before")
  result "$ok" "hang: exit $rc (1 expected), link $before -> $after (unchanged expected), old version running again: $running, its first frame from ${frame:-nothing}"
  chroot "$CHROOT" "$FAKE_BIN/systemctl" stop autotrader.service || true
  git_pi checkout -q main
  git_pi branch -q -D chroot-check
fi

# --- legacy ------------------------------------------------------------------------------------
if want legacy; then
  say "an install from before versioned venvs ($LEGACY_COMMIT), then today's pi-install with a failing doctor"
  install_standin
  step_log legacy
  # Start from nothing kiosk-wise (the data stays).
  in_root bash "$CLONE/packaging/pi-uninstall.sh" >/dev/null
  LEGACY=/home/pi/AutoTrader-legacy
  rm -rf "$CHROOT$LEGACY"
  git clone -q "$REPO" "$CHROOT$LEGACY"
  git -c advice.detachedHead=false -C "$CHROOT$LEGACY" checkout -q "$LEGACY_COMMIT"
  in_root chown -R pi:pi "$LEGACY"
  in_root env SUDO_USER=pi bash "$LEGACY/packaging/pi-install.sh" --no-start
  legacy_unit=$(cat "$CHROOT/etc/systemd/system/autotrader.service")
  git_pi checkout -q -B chroot-check
  as_pi sh -c "printf '\nraise SystemExit(\"chroot check: a doctor that fails\")\n' >> $CLONE/app/ops/doctor.py"
  git_pi commit -q -am "chroot check: doctor fails"
  rc=0; in_root env SUDO_USER=pi bash "$CLONE/packaging/pi-install.sh" --no-start || rc=$?
  link=$(readlink "$CHROOT/opt/autotrader/venv")
  same=no; [ "$(cat "$CHROOT/etc/systemd/system/autotrader.service")" = "$legacy_unit" ] && same=yes
  eglfs=no; [ -f "$CHROOT/etc/autotrader/eglfs.json" ] && eglfs=yes
  running=no
  if chroot "$CHROOT" "$FAKE_BIN/systemctl" start autotrader.service; then
    sleep 25
    chroot "$CHROOT" "$FAKE_BIN/systemctl" is-active autotrader.service && running=yes
    grep -m1 "window shown" "$CHROOT/run/check-systemd/service.log" || true
    chroot "$CHROOT" "$FAKE_BIN/systemctl" stop autotrader.service || true
  fi
  ok=$(expect "$rc/$link/$same/$eglfs/$running" "1/venvs/legacy/yes/yes/yes")
  result "$ok" "legacy: pi-install exit $rc (1 expected), link $link (venvs/legacy expected), old unit back: $same, eglfs.json back: $eglfs, old app runs with it: $running"
  git_pi checkout -q main
  git_pi branch -q -D chroot-check
  # Today's install again over it (for the uninstall step).
  in_root env SUDO_USER=pi bash "$CLONE/packaging/pi-install.sh" --no-start >/dev/null || true
fi

# --- uninstall ---------------------------------------------------------------------------------
if want uninstall; then
  say "pi-uninstall.sh"
  rc=0; in_root bash "$CLONE/packaging/pi-uninstall.sh" || rc=$?
  left=""
  for f in opt/autotrader etc/autotrader etc/systemd/system/autotrader.service \
           etc/systemd/system/multi-user.target.wants/autotrader.service usr/local/bin/autotrader; do
    if [ -e "$CHROOT/$f" ] || [ -L "$CHROOT/$f" ]; then left="$left /$f"; fi
  done
  data=no; [ -d "$CHROOT/home/pi/.local/share/autotrader" ] && data=yes
  ok=$(expect "$rc/${left:-}/$data" "0//yes")
  result "$ok" "uninstall: exit $rc, left behind: ${left:-nothing}, data kept: $data"
fi

say "summary"
printf '  %s\n' "${RESULTS[@]}"
exit "$FAILED"
