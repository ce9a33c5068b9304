#!/usr/bin/env bash
# Installs or upgrades the app of the Pi kiosk (packaging/pi-install.sh) atomically:
#
#   sudo bash packaging/pi-upgrade.sh [--prefix DIR] [--user NAME] [--dest DIR] [--start]
#                                     [--keep N]
#
# 1. stops the kiosk service if it runs;
# 2. backs up the data with the installed version (`autotrader backup --archive`, to --dest
#    too, e.g. a USB stick); a failed backup stops the upgrade and changes nothing;
# 3. exports the checkout's committed tree (`git archive HEAD`) into a temporary folder and
#    builds there: no root-owned build/ or *.egg-info in the checkout, no stale plugin from an
#    old build/lib;
# 4. installs it into a new versioned venv ($PREFIX/venvs/<version>-<commit>-<time>) with the
#    pinned versions of packaging/pi-constraints.txt (Qt and pyqtgraph come from Debian);
# 5. switches the $PREFIX/venv symlink to it (one rename), runs `autotrader doctor`, starts the
#    service again, waits for the new version's first frame on the screen (the marker the
#    window writes, app/ops/kioskready.py) and checks it stays up without a restart; when one
#    of these fails it switches back to the previous venv and starts that. Going back to an
#    install from before the per-start screen step (venvs/legacy) also puts back the unit it
#    ran with (saved by pi-install.sh). The newest --keep venvs (default 3) are kept.
#
#   --start   start the service afterwards even if it was not running
#   --dest DIR  also write the pre-upgrade backup there (autotrader backup --dest)
# Exit code: 0 upgraded, 1 nothing changed (or rolled back: the message says which).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/autotrader
RUN_USER=""
DEST=""
START=0
KEEP=3
SERVICE=autotrader.service
SETTLE=${AUTOTRADER_UPGRADE_SETTLE:-15}   # seconds the started service must stay up
FIRST_FRAME=${AUTOTRADER_UPGRADE_FIRST_FRAME:-120}  # seconds to wait for the first frame
UNIT_FILE=${AUTOTRADER_UNIT_FILE:-/etc/systemd/system/$SERVICE}
ETC=${AUTOTRADER_ETC:-/etc/autotrader}

die() { echo "pi-upgrade: $*" >&2; exit 1; }
indent() { local line; while IFS= read -r line; do echo "    $line"; done <<<"$1"; }
say() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --user) RUN_USER=${2:?--user needs a name}; shift 2 ;;
    --dest) DEST=${2:?--dest needs a folder}; shift 2 ;;
    --start) START=1; shift ;;
    --keep) KEEP=${2:?--keep needs a number}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $KEEP =~ ^[1-9][0-9]*$ ]] || die "--keep needs a number of 1 or more"
if [ -z "$RUN_USER" ] && [ -f "$PREFIX/install.env" ]; then
  RUN_USER=$(sed -n 's/^RUN_USER=//p' "$PREFIX/install.env")
fi
[ -n "$RUN_USER" ] || die "no --user given and no $PREFIX/install.env (run pi-install.sh first)"
# As root (the service) or, for a private prefix, as the user who runs the app.
[ "$(id -u)" -eq 0 ] || [ "$RUN_USER" = "$(id -un)" ] || die "run me with sudo"
command -v git >/dev/null || die "git is needed (sudo apt-get install git)"
git -c safe.directory="$SRC" -C "$SRC" rev-parse --verify -q HEAD >/dev/null \
  || die "$SRC is not a git checkout with a commit: nothing to export"

as_user() {
  if [ "$(id -un)" = "$RUN_USER" ]; then "$@"; else runuser -u "$RUN_USER" -- "$@"; fi
}
# AUTOTRADER_SYSTEMD_RUN: where a running systemd is seen (tests point it at a folder).
have_systemd() { command -v systemctl >/dev/null && [ -d "${AUTOTRADER_SYSTEMD_RUN:-/run/systemd/system}" ]; }

LINK=$PREFIX/venv
VENVS=$PREFIX/venvs
WORK=$(mktemp -d)
NEW=""
WAS_ACTIVE=0
SWITCHED=0
STARTED=0
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# restart_old: on a failure before the switch, bring back what ran before.
restart_old() {
  if [ "$WAS_ACTIVE" = 1 ]; then
    systemctl start "$SERVICE" || true
  fi
}
fail() {
  echo "pi-upgrade: $*" >&2
  [ -n "$NEW" ] && [ "$SWITCHED" = 0 ] && rm -rf "$NEW"
  restart_old
  echo "pi-upgrade: nothing changed; the installed version is still in use" >&2
  exit 1
}

# --- 1. stop ---------------------------------------------------------------------------------
if have_systemd && systemctl is-active --quiet "$SERVICE"; then
  WAS_ACTIVE=1
  say "stopping $SERVICE"
  systemctl stop "$SERVICE"
fi
[ "$START" = 1 ] && WAS_ACTIVE_OR_START=1 || WAS_ACTIVE_OR_START=$WAS_ACTIVE

# An install from before versioned venvs: its venv becomes the first one (its programs keep
# working: they name $PREFIX/venv/bin/python, which the link resolves).
mkdir -p "$VENVS"
if [ -d "$LINK" ] && [ ! -L "$LINK" ]; then
  say "moving the existing venv to $VENVS/legacy"
  mv "$LINK" "$VENVS/legacy"
  ln -s venvs/legacy "$LINK"
fi
OLD=""
BACKED_UP=0
[ -L "$LINK" ] && [ -x "$LINK/bin/autotrader" ] && OLD=$(readlink -f "$LINK")

# --- 2. backup -------------------------------------------------------------------------------
if [ -n "$OLD" ]; then
  say "backing up the data with the installed version"
  args=(backup --archive)
  [ -n "$DEST" ] && args+=(--dest "$DEST")
  if ! out=$(as_user "$OLD/bin/autotrader" "${args[@]}" 2>&1); then
    indent "$out"
    if grep -q "nothing to back up" <<<"$out"; then
      echo "    (no data yet: nothing to back up)"
    else
      fail "the backup failed: upgrade stopped (free space? is ${DEST:-the data folder} writable by $RUN_USER?)"
    fi
  else
    indent "$out"
    BACKED_UP=1
  fi
fi

# --- 3. a clean export -----------------------------------------------------------------------
export_dir=$WORK/src
mkdir -p "$export_dir"
git -c safe.directory="$SRC" -C "$SRC" archive --format=tar HEAD | tar -x -C "$export_dir" \
  || fail "git archive of $SRC failed"
if [ -n "$(git -c safe.directory="$SRC" -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "    note: $SRC has uncommitted changes; they are not installed (commit them first)"
fi
commit=$(git -c safe.directory="$SRC" -C "$SRC" rev-parse --short HEAD)
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$export_dir/app/__init__.py")
[ -n "$version" ] || fail "no __version__ in app/__init__.py"
ID="$version-$commit-$(date -u +%Y%m%dT%H%M%SZ)"
NEW=$VENVS/$ID

# --- 4. a new venv ---------------------------------------------------------------------------
say "installing AutoTrader $version ($commit) into $NEW"
python3 -m venv --system-site-packages "$NEW" || fail "cannot create $NEW"
mapfile -t DEPS < <(python3 "$export_dir/packaging/requirements_without_qt.py" "$export_dir/pyproject.toml")
(
  cd "$WORK"
  "$NEW/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$export_dir/packaging/pi-constraints.txt" "${DEPS[@]}"
  "$NEW/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$export_dir"
) || fail "installing into $NEW failed (network? see pip's message above)"
# Debian's python3-pyqtgraph brings PyQt5 and PyQt6 along; pin pyqtgraph to PySide6 for every
# use of this venv (the service, the menu entry, a shell).
site=$("$NEW/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo 'import os; os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")' > "$site/autotrader-qt-binding.pth"
"$NEW/bin/autotrader" --version >/dev/null || fail "the new venv's autotrader does not start"

# --- 5. switch, check, start -----------------------------------------------------------------
switch_to() {  # switch_to DIR: point $LINK at DIR in one rename
  ln -sfn "venvs/$(basename "$1")" "$PREFIX/venv.new"
  mv -T "$PREFIX/venv.new" "$LINK"
}
# restore_legacy_unit: the previous venv predates app.ops.display (the unit's per-start screen
# step): the current unit would fail in it at every start, so the unit pi-install.sh saved
# from that install goes back, with the eglfs.json it read.
restore_legacy_unit() {
  local saved=$PREFIX/legacy/$SERVICE
  [ -f "$saved" ] || return 0
  compgen -G "$OLD/lib/python3*/site-packages/app/ops/display.py" >/dev/null && return 0
  install -m 0644 "$saved" "$UNIT_FILE"
  if [ ! -e "$ETC/eglfs.json" ] && [ -f "$ETC/eglfs.json.old" ]; then
    cp -p "$ETC/eglfs.json.old" "$ETC/eglfs.json"
  fi
  echo "pi-upgrade: $(basename "$OLD") predates the screen step: its own unit is back in $UNIT_FILE" >&2
  if have_systemd; then systemctl daemon-reload || true; fi
}
rollback() {
  echo "pi-upgrade: $*" >&2
  # The new version may still run (hung before its first frame, or in a restart loop): a
  # start would then be a no-op and leave it running. Stop it before switching back.
  if [ "$STARTED" = 1 ]; then systemctl stop "$SERVICE" || true; fi
  if [ -n "$OLD" ]; then
    switch_to "$OLD"
    restore_legacy_unit
    echo "pi-upgrade: rolled back to $(basename "$OLD"); $(basename "$NEW") is kept for a look" >&2
    if [ "$BACKED_UP" = 1 ]; then
      echo "pi-upgrade: if the old version now reports a newer DB schema, restore the backup" \
           "taken above: autotrader restore <backup>" >&2
    fi
    if [ "$WAS_ACTIVE_OR_START" = 1 ] && have_systemd; then systemctl start "$SERVICE" || true; fi
  else
    rm -f "$LINK"
    echo "pi-upgrade: no previous version to go back to" >&2
  fi
  exit 1
}
# first_frame_file: where the installed unit has the window write its first-frame marker
# (empty: a unit from before the marker; then the first frame is not waited for).
first_frame_file() {
  [ -f "$UNIT_FILE" ] && sed -n 's/^Environment=AUTOTRADER_READY_FILE=//p' "$UNIT_FILE" | tail -n 1
}
# wait_first_frame FILE: the new venv's window has drawn its first frame (the marker names
# the venv it ran from) within $FIRST_FRAME seconds.
wait_first_frame() {
  local want prefix waited=0
  want=$(readlink -f "$NEW")
  while :; do
    prefix=$(sed -n 's/^prefix=//p' "$1" 2>/dev/null || true)
    if [ -n "$prefix" ] && [ "$(readlink -f "$prefix")" = "$want" ]; then
      return 0
    fi
    [ "$waited" -lt "$FIRST_FRAME" ] || return 1
    sleep 1
    waited=$((waited + 1))
  done
}
# restarts: the unit's automatic restarts since the last manual start (0 when not told).
restarts() {
  local n
  n=$(systemctl show -p NRestarts --value "$SERVICE" 2>/dev/null || true)
  [[ $n =~ ^[0-9]+$ ]] && echo "$n" || echo 0
}
switch_to "$NEW"
SWITCHED=1
# doctor_blames_the_version: doctor failed; true unless only the screen checks failed (no KMS
# driver, nothing plugged in, a rotation Qt rejects: the Pi's, not the version's; an image
# built in a chroot has no screen at all). The new version's screen is judged by its first
# frame below.
doctor_blames_the_version() {
  local found
  found=$(as_user "$LINK/bin/autotrader" doctor --offline --quick --json 2>/dev/null) || true
  "$LINK/bin/python" -I -c '
import json, sys
try:
    findings = json.loads(sys.stdin.read())
except ValueError:
    sys.exit(0)
fails = [f["check"] for f in findings if f.get("level") == "FAIL"]
sys.exit(0 if not fails or set(fails) - {"screen output", "screen", "rotation"} else 1)
' <<<"$found"
}
say "checking the new version: autotrader doctor"
if ! as_user "$LINK/bin/autotrader" doctor --offline --quick; then
  if doctor_blames_the_version; then
    rollback "doctor found a problem with the new version"
  fi
  echo "    only the screen checks failed: fix them as doctor says (not a reason to roll back)"
fi
if [ "$WAS_ACTIVE_OR_START" = 1 ] && have_systemd; then
  if ! "$LINK/bin/python" -I -m app.ops.display list >/dev/null 2>&1; then
    # No screen connected now (a monitor switched off): the service waits and retries on its
    # own; its start says nothing about the new version, so it is not a reason to roll back.
    say "no screen connected now: $SERVICE starts when one is (not checked here)"
    systemctl start --no-block "$SERVICE" || true
  else
    ready=$(first_frame_file)
    [ -z "$ready" ] || rm -f "$ready"
    say "starting $SERVICE"
    STARTED=1
    systemctl start "$SERVICE" || rollback "$SERVICE did not start"
    if [ -n "$ready" ]; then
      say "waiting for the new version's first frame on the screen (up to $FIRST_FRAME s)"
      wait_first_frame "$ready" || rollback "the new version showed no first frame within" \
        "$FIRST_FRAME s (journalctl -u autotrader -b)"
      say "first frame shown ($(sed -n 's/^time=//p' "$ready" 2>/dev/null))"
    else
      echo "    the installed unit predates the first-frame marker: not waited for" \
           "(sudo bash packaging/pi-install.sh updates the unit)"
    fi
    sleep "$SETTLE"
    systemctl is-active --quiet "$SERVICE" \
      || rollback "$SERVICE stopped within $SETTLE s (journalctl -u autotrader -b)"
    n=$(restarts)
    [ "$n" = 0 ] || rollback "$SERVICE restarted $n times since the start (journalctl -u autotrader -b)"
  fi
fi

# Keep the newest $KEEP venvs (always the one in use and the previous one).
# (Venv names are ours: version-commit-time, no spaces or newlines.)
mapfile -t all < <(find "$VENVS" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' \
                   | sort -rn | cut -d' ' -f2-)
n=0
for v in "${all[@]}"; do
  n=$((n + 1))
  [ "$v" = "$NEW" ] || [ "$v" = "$OLD" ] || [ "$n" -le "$KEEP" ] || rm -rf "$v"
done
say "AutoTrader $version ($commit) in use: $LINK -> venvs/$ID"
