#!/usr/bin/env bash
# Installs AutoTrader on Raspberry Pi OS (Debian 13 "trixie" based) as a fullscreen kiosk on the
# touchscreen, started at boot by systemd. Run from a checkout of AutoTrader:
#
#   sudo bash packaging/pi-install.sh [--user NAME] [--prefix DIR] [--no-start] [--console-boot]
#                                     [--rotate 0|90|180|270] [--dest DIR]
#
# Qt comes from Debian (python3-pyside6.*, python3-pyqtgraph): PyPI's PySide6 wheels cannot drive
# the Pi's display with eglfs. The app and its other dependencies go into a versioned virtualenv
# made with --system-site-packages, by packaging/pi-upgrade.sh (also the way to upgrade: stop,
# backup, clean build, switch, check, roll back). The data (the user's
# ~/.local/share/autotrader), the config and /etc/autotrader/*.env are kept. Remove with
# packaging/pi-uninstall.sh, which also restores the boot target.
#
# The screen: the kiosk needs it to itself. On an image that boots to the desktop the service
# is installed but not enabled (it would run unseen behind the desktop and read its touches)
# unless --console-boot is given; then the Pi boots to the console from the next boot on and
# the script asks for a reboot instead of starting the kiosk now.
#
#   --user NAME     the account that runs the app (default: the user who ran sudo; as plain root:
#                   a dedicated system user "autotrader" is created)
#   --prefix DIR    where the app goes (default /opt/autotrader)
#   --no-start      install (and enable), but do not (re)start the service now
#   --console-boot  boot to the console (multi-user.target): eglfs needs the screen to itself
#   --rotate DEG    turn the picture and the touch by 0, 90, 180 or 270 degrees clockwise (a
#                   portrait panel such as Touch Display 2, 720x1280, is offered 90)
#   --dest DIR      the upgrade's backup goes there too (a USB stick, a mounted share)
#   --render-units DIR   only write the filled-in systemd units (and, with --rotate, the
#                   rotation lines of autotrader.env) into DIR (no root needed; tests)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/autotrader
ETC=/etc/autotrader
UNIT=/etc/systemd/system/autotrader.service
RUN_USER=""
START=1
CONSOLE_BOOT=0
RENDER=""
ROTATE=""
DEST=""

# Debian 13 package names (checked against trixie's arm64 index; Debian 12 has no PySide6).
APT_PACKAGES=(
  python3 python3-venv python3-pip
  python3-pyside6.qtcore python3-pyside6.qtgui python3-pyside6.qtwidgets
  python3-pyside6.qtqml python3-pyside6.qtquick python3-pyside6.qtquickwidgets
  python3-pyside6.qtquickcontrols2 python3-pyside6.qtopengl python3-pyside6.qtopenglwidgets
  python3-pyside6.qtnetwork python3-pyside6.qtsvg
  qml6-module-qtquick qml6-module-qtquick-controls qml6-module-qtquick-templates
  qml6-module-qtquick-layouts qml6-module-qtquick-window qml6-module-qtqml-workerscript
  qml6-module-qtqml-models qml6-module-qtquick-shapes
  libqt6opengl6 libqt6gui6 qt6-qpa-plugins libinput10 libegl1 libgles2 libgbm1
  libegl-mesa0 libgl1-mesa-dri fonts-dejavu-core
  qt6-wayland git
)
APT_PLOT=(python3-pyqtgraph)

die() { echo "pi-install: $*" >&2; exit 1; }
say() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --user) RUN_USER=${2:?--user needs a name}; shift 2 ;;
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --no-start) START=0; shift ;;
    --console-boot) CONSOLE_BOOT=1; shift ;;
    --rotate) ROTATE=${2:?--rotate needs 0, 90, 180 or 270}; shift 2 ;;
    --dest) DEST=${2:?--dest needs a folder}; shift 2 ;;
    --render-units) RENDER=${2:?--render-units needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$ROTATE" in
  ""|0|90|180|270) ;;
  *) die "--rotate takes 0, 90, 180 or 270 (degrees clockwise), not $ROTATE" ;;
esac

# render_unit USER GROUP HOME OUT [TEMPLATE]: a unit template with the fields filled in.
render_unit() {
  # systemd refuses to start a unit naming a group that does not exist.
  local groups="" g
  for g in video render input; do
    getent group "$g" >/dev/null && groups="$groups $g"
  done
  sed -e "s|@USER@|$1|g" -e "s|@GROUP@|$2|g" -e "s|@HOME@|$3|g" \
      -e "s|@PREFIX@|$PREFIX|g" -e "s|@ETC@|$ETC|g" -e "s|@GROUPS@|${groups# }|g" \
      "$SRC/packaging/${5:-autotrader.service}" > "$4"
  [ -n "$groups" ] || sed -i '/^SupplementaryGroups=$/d' "$4"
  if grep -q '@[A-Z]*@' "$4"; then die "unfilled field left in $4"; fi
}

# kiosk_plan BOOT_TARGET CONSOLE_BOOT HAS_DM: what to do with the kiosk service.
#   enable         nothing holds the screen: the console target, or graphical.target with no
#                  display manager (systemd's own default.target is graphical.target, so an
#                  image that never chose one, a Lite image included, may report it while
#                  booting to a console): enable it (and start it now)
#   enable-reboot  --console-boot on a desktop image: boot to the console from the next boot,
#                  enable, and ask for a reboot instead of starting now (the desktop has the
#                  screen until then)
#   install-only   a desktop image without --console-boot: an enabled kiosk would run unseen
#                  behind the desktop, read the touchscreen and hold the engine lock the menu
#                  entry needs, so install it but leave it disabled
kiosk_plan() {
  if [ "$1" = multi-user.target ] || { [ "$1" = graphical.target ] && [ "${3:-1}" = 0 ]; }; then
    echo enable
  elif [ "$2" = 1 ]; then
    echo enable-reboot
  else
    echo install-only
  fi
}

# has_display_manager: 1 when a display manager (lightdm, gdm, sddm, greetd...) is set to
# start: each installs the display-manager.service alias when enabled.
has_display_manager() {
  if [ -e /etc/systemd/system/display-manager.service ]; then echo 1; else echo 0; fi
}

# set_rotation ENVFILE DEG PYTHON: the picture's rotation and the matching touch matrix, always
# together (app/ops/display.py computes both); earlier rotation lines are replaced.
set_rotation() {
  local lines
  lines=$(PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$SRC" "$3" -m app.ops.display touch-matrix "$2") \
    || die "cannot compute the rotation settings for $2"
  touch "$1"
  sed -i -e '/^QT_QPA_EGLFS_ROTATION=/d' -e '/^QT_QPA_LIBINPUT_TOUCH_MATRIX=/d' \
    -e '/^# pi-install --rotate/d' "$1"
  printf '# pi-install --rotate %s (picture and touch together):\n%s\n' "$2" "$lines" >> "$1"
}

if [ -n "$RENDER" ]; then
  # --render-units DIR: the three units as they would be installed (tests).
  u=${RUN_USER:-$(id -un)}
  mkdir -p "$RENDER"
  for t in autotrader.service autotrader-backup.service autotrader-backup.timer; do
    render_unit "$u" "$(id -gn "$u")" "$(getent passwd "$u" | cut -d: -f6)" "$RENDER/$t" "$t"
  done
  if [ -n "$ROTATE" ]; then
    cp "$SRC/packaging/autotrader.env" "$RENDER/autotrader.env"
    set_rotation "$RENDER/autotrader.env" "$ROTATE" "${PYTHON:-python3}"
  fi
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "run me with sudo: sudo bash $0 $*"
[ -f "$SRC/pyproject.toml" ] || die "run me from an AutoTrader checkout ($SRC has no pyproject.toml)"
command -v apt-get >/dev/null || die "this installer is for Raspberry Pi OS / Debian (apt-get not found)"

# --- the account ----------------------------------------------------------------------------
CREATED_USER=0
if [ -z "$RUN_USER" ]; then
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    RUN_USER=$SUDO_USER
  else
    RUN_USER=autotrader
  fi
fi
if ! id "$RUN_USER" >/dev/null 2>&1; then
  [ "$RUN_USER" = autotrader ] || die "user $RUN_USER does not exist"
  say "creating the system user autotrader (home /var/lib/autotrader)"
  useradd --system --create-home --home-dir /var/lib/autotrader --shell /usr/sbin/nologin autotrader
  CREATED_USER=1
elif [ -f "$PREFIX/install.env" ] && grep -q '^CREATED_USER=1' "$PREFIX/install.env"; then
  CREATED_USER=1
fi
[ "$RUN_USER" != root ] || die "refusing to run the kiosk as root: pass --user NAME"
RUN_GROUP=$(id -gn "$RUN_USER")
RUN_HOME=$(getent passwd "$RUN_USER" | cut -d: -f6)
for g in video render input; do
  getent group "$g" >/dev/null && usermod -aG "$g" "$RUN_USER"
done

# --- Debian packages ------------------------------------------------------------------------
# shellcheck source=/dev/null
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ] || [ "${VERSION_ID:-0}" = 12 ]; then
  die "Debian 12 / Raspberry Pi OS bookworm has no PySide6 packages: use Raspberry Pi OS based on Debian 13 (trixie)"
fi
say "installing Debian packages (Qt 6, PySide6, pyqtgraph)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
# Separately, once PySide6 is in: python3-pyqtgraph accepts any Qt binding and apt would
# otherwise satisfy that with its first choice, PyQt5.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PLOT[@]}"
python3 - <<'PY' || die "Debian's PySide6 is too old or incomplete (AutoTrader needs 6.8 or newer)"
import PySide6, pyqtgraph
from PySide6 import QtQuick, QtQuickWidgets, QtWidgets  # noqa: F401
major, minor = (int(x) for x in PySide6.__version__.split(".")[:2])
assert (major, minor) >= (6, 8), PySide6.__version__
print(f"    PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}")
PY

# --- the screen and the boot target ---------------------------------------------------------
SYSTEMD_UP=0
[ -d /run/systemd/system ] && SYSTEMD_UP=1
if [ "$SYSTEMD_UP" = 1 ]; then
  BOOT_TARGET=$(systemctl get-default 2>/dev/null || echo unknown)
else  # a chroot building an SD-card image: read the link
  BOOT_TARGET=$(basename "$(readlink /etc/systemd/system/default.target 2>/dev/null || echo graphical.target)")
fi
# The boot target before the first install, for pi-uninstall.sh (a re-run keeps the first one).
PREV_TARGET=$BOOT_TARGET
if [ -f "$PREFIX/install.env" ] && grep -q '^PREV_TARGET=' "$PREFIX/install.env"; then
  PREV_TARGET=$(sed -n 's/^PREV_TARGET=//p' "$PREFIX/install.env")
fi
mkdir -p "$ETC" "$PREFIX"
printf 'RUN_USER=%s\nCREATED_USER=%s\nSRC=%s\nPREV_TARGET=%s\n' \
  "$RUN_USER" "$CREATED_USER" "$SRC" "$PREV_TARGET" > "$PREFIX/install.env"

# eglfs.json is written at every start (app/ops/display.py); one from an older install would
# only mislead.
if [ -f "$ETC/eglfs.json" ]; then
  mv "$ETC/eglfs.json" "$ETC/eglfs.json.old"
  echo "    $ETC/eglfs.json is no longer used (the screen is found at every start): kept as eglfs.json.old"
fi
if [ ! -f "$ETC/autotrader.env" ]; then
  install -m 0644 "$SRC/packaging/autotrader.env" "$ETC/autotrader.env"
fi
# The screen now (to offer a rotation): the connected output's preferred mode.
screen=$(PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$SRC" python3 -m app.ops.display list 2>/dev/null | sed -n 's/^\* //p' || true)
say "screen: ${screen:-none connected now (the kiosk waits for one at every start)}"
size=$(awk '{print $3}' <<<"$screen")
w=${size%%x*} h=${size#*x}
if [ -z "$ROTATE" ] && [[ $w =~ ^[0-9]+$ && $h =~ ^[0-9]+$ ]] && [ "$h" -gt "$w" ] \
   && ! grep -q '^QT_QPA_EGLFS_ROTATION=' "$ETC/autotrader.env"; then
  # A portrait panel (Touch Display 2 is 720x1280): the app is laid out for landscape.
  answer=y
  if [ -t 0 ]; then
    read -r -p "    The screen is portrait ($size). Turn picture and touch to landscape (90 degrees)? [Y/n] " answer || answer=y
  else
    echo "    the screen is portrait ($size): turning picture and touch to landscape (--rotate 90);"
    echo "    another way round: sudo bash $0 --rotate 270 (or 0, 180)"
  fi
  [[ ${answer:-y} =~ ^[Nn] ]] || ROTATE=90
fi

# --- the app (versioned venv, backup first, rollback) ----------------------------------------
VENV=$PREFIX/venv
if [ -n "$ROTATE" ]; then
  set_rotation "$ETC/autotrader.env" "$ROTATE" python3
  say "rotation $ROTATE: $(grep -E '^QT_QPA_(EGLFS_ROTATION|LIBINPUT_TOUCH_MATRIX)=' "$ETC/autotrader.env" | tr '\n' ' ')"
fi

# A unit from before the per-start screen step goes with that install's venv (venvs/legacy):
# kept, so that pi-upgrade.sh can put it back if it has to roll back to that venv.
if [ -f "$UNIT" ] && ! grep -q 'app.ops.display' "$UNIT" && [ ! -f "$PREFIX/legacy/autotrader.service" ]; then
  install -D -m 0644 "$UNIT" "$PREFIX/legacy/autotrader.service"
fi
render_unit "$RUN_USER" "$RUN_GROUP" "$RUN_HOME" "$UNIT.new"
mv "$UNIT.new" "$UNIT"
for t in autotrader-backup.service autotrader-backup.timer; do
  render_unit "$RUN_USER" "$RUN_GROUP" "$RUN_HOME" "/etc/systemd/system/$t" "$t"
done
# The first network time sync is waited for at boot, but not for ever (no network: no kiosk).
install -D -m 0644 "$SRC/packaging/time-wait-sync-cap.conf" \
  /etc/systemd/system/systemd-time-wait-sync.service.d/autotrader.conf
install -m 0644 "$SRC/packaging/autotrader.desktop" /usr/share/applications/autotrader.desktop
# The menu entry: natively on the desktop's Wayland (labwc; qt6-wayland), X11 as the fallback;
# PYQTGRAPH_QT_LIB: see the unit (Debian's pyqtgraph brings PyQt5/PyQt6 along).
sed -i "s|^Exec=autotrader|Exec=env \"QT_QPA_PLATFORM=wayland;xcb\" PYQTGRAPH_QT_LIB=PySide6 $VENV/bin/autotrader|" \
  /usr/share/applications/autotrader.desktop
install -D -m 0644 "$SRC/packaging/autotrader.svg" /usr/share/icons/hicolor/scalable/apps/autotrader.svg
ln -sf "$VENV/bin/autotrader" /usr/local/bin/autotrader
[ "$SYSTEMD_UP" = 1 ] && systemctl daemon-reload

# enable_units / disable_units: with or without a running systemd (an image being built).
enable_units() {
  if ! systemctl enable autotrader.service autotrader-backup.timer >/dev/null 2>&1; then
    mkdir -p /etc/systemd/system/multi-user.target.wants /etc/systemd/system/timers.target.wants
    ln -sf "$UNIT" /etc/systemd/system/multi-user.target.wants/autotrader.service
    ln -sf /etc/systemd/system/autotrader-backup.timer \
      /etc/systemd/system/timers.target.wants/autotrader-backup.timer
  fi
}
disable_kiosk() {
  systemctl disable autotrader.service >/dev/null 2>&1 || true
  rm -f /etc/systemd/system/multi-user.target.wants/autotrader.service
}

REBOOT=0
PLAN=$(kiosk_plan "$BOOT_TARGET" "$CONSOLE_BOOT" "$(has_display_manager)")
case $PLAN in
  enable-reboot)
    systemctl set-default multi-user.target >/dev/null 2>&1 \
      || ln -sf /lib/systemd/system/multi-user.target /etc/systemd/system/default.target
    REBOOT=1
    enable_units ;;
  install-only)
    disable_kiosk
    systemctl enable autotrader-backup.timer >/dev/null 2>&1 || true
    START=0 ;;
  *) enable_units ;;
esac

# The app, built from a clean export of this checkout into a new versioned venv. On an upgrade
# pi-upgrade.sh stops the kiosk, backs up first and starts the kiosk again if it was running.
upgrade_args=(--prefix "$PREFIX" --user "$RUN_USER")
[ -n "$DEST" ] && upgrade_args+=(--dest "$DEST")
if [ "$START" = 1 ] && [ "$REBOOT" = 0 ] && [ "$SYSTEMD_UP" = 1 ] \
   && systemctl is-enabled --quiet autotrader.service; then
  upgrade_args+=(--start)
fi
bash "$SRC/packaging/pi-upgrade.sh" "${upgrade_args[@]}" || die "the app was not installed or upgraded (see above)"
if [ "$SYSTEMD_UP" = 1 ]; then systemctl start autotrader-backup.timer 2>/dev/null || true; fi

if [ "$REBOOT" = 1 ]; then
  say "the Pi boots to the console from now on; the kiosk takes the screen then."
  say "REBOOT NOW to start it: sudo reboot   (not started now: the desktop still holds the screen)"
elif [ "$PLAN" = install-only ]; then
  echo "    This Pi boots to $BOOT_TARGET (the desktop holds the screen): the kiosk service is installed"
  echo "    but NOT enabled. Use AutoTrader from the desktop menu (Office > AutoTrader), or make"
  echo "    the Pi a kiosk: sudo bash $0 --console-boot   (then reboot)"
elif [ "$START" = 1 ] && [ "$SYSTEMD_UP" = 1 ]; then
  say "running: systemctl status autotrader; logs: journalctl -u autotrader -f"
elif [ "$START" = 1 ]; then
  say "systemd is not running here: the kiosk starts at the next boot"
fi
say "done. Data: $RUN_HOME/.local/share/autotrader  Config: $RUN_HOME/.config/autotrader/autotrader.toml"
