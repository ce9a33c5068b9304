#!/usr/bin/env bash
# Installs AutoTrader on Raspberry Pi OS (Debian 13 "trixie" based) as a fullscreen kiosk on the
# touchscreen, started at boot by systemd. Run from a checkout of AutoTrader:
#
#   sudo bash packaging/pi-install.sh [--user NAME] [--prefix DIR] [--no-start] [--console-boot]
#
# Qt comes from Debian (python3-pyside6.*, python3-pyqtgraph): PyPI's PySide6 wheels cannot drive
# the Pi's display with eglfs. The app and its other dependencies go into a virtualenv made with
# --system-site-packages. Running it again upgrades in place; the data (the user's
# ~/.local/share/autotrader), the config and /etc/autotrader/*.env are kept, and a backup is
# taken before an upgrade. Remove with packaging/pi-uninstall.sh.
#
#   --user NAME     the account that runs the app (default: the user who ran sudo; as plain root:
#                   a dedicated system user "autotrader" is created)
#   --prefix DIR    where the app goes (default /opt/autotrader)
#   --no-start      install and enable, but do not (re)start the service now
#   --console-boot  boot to the console (multi-user.target): eglfs needs the screen to itself
#   --render-units DIR   only write the filled-in systemd units into DIR (no root needed; tests)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/autotrader
ETC=/etc/autotrader
UNIT=/etc/systemd/system/autotrader.service
RUN_USER=""
START=1
CONSOLE_BOOT=0
RENDER=""

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
    --render-units) RENDER=${2:?--render-units needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

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

# qt_output_name SYSFS_NAME: the kernel's connector name (DSI-1, HDMI-A-1, DP-1) as Qt's KMS
# config calls it (DSI1, HDMI1, DP1: Qt's type name followed by the type's index).
qt_output_name() {
  local kind=${1%-*} num=${1##*-}
  case "$kind" in
    HDMI-A|HDMI-B) kind=HDMI ;;
    DVI-I|DVI-D|DVI-A) kind=DVI ;;
    SVIDEO|9PinDIN|Component|TV) kind=TV ;;
  esac
  echo "$kind$num"
}

if [ -n "$RENDER" ]; then
  # --render-units DIR: the three units as they would be installed (tests).
  u=${RUN_USER:-$(id -un)}
  mkdir -p "$RENDER"
  for t in autotrader.service autotrader-backup.service autotrader-backup.timer; do
    render_unit "$u" "$(id -gn "$u")" "$(getent passwd "$u" | cut -d: -f6)" "$RENDER/$t" "$t"
  done
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

# --- the app --------------------------------------------------------------------------------
VENV=$PREFIX/venv
UPGRADE=0
[ -x "$VENV/bin/autotrader" ] && UPGRADE=1
if [ "$UPGRADE" = 1 ]; then
  say "upgrading: backing up the data first"
  runuser -u "$RUN_USER" -- "$VENV/bin/autotrader" backup --archive \
    || echo "    (no backup taken: nothing to back up yet, or see the message above)"
fi
mkdir -p "$PREFIX"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV (with Debian's PySide6 and pyqtgraph visible)"
  python3 -m venv --system-site-packages "$VENV"
fi
say "installing AutoTrader and its dependencies (minus PySide6/pyqtgraph) into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
mapfile -t DEPS < <("$VENV/bin/python" "$SRC/packaging/requirements_without_qt.py" "$SRC/pyproject.toml")
"$VENV/bin/python" -m pip install -q --upgrade "${DEPS[@]}"
"$VENV/bin/python" -m pip install -q --upgrade --no-deps --force-reinstall "$SRC"
# Debian's python3-pyqtgraph brings PyQt5 and PyQt6 along; pyqtgraph imported before PySide6
# would bind to PyQt6 and its charts could not join the PySide6 window. Pin the binding for
# every use of this venv (the service, the menu entry, a shell).
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo 'import os; os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")' > "$site/autotrader-qt-binding.pth"
cp "$SRC/README.md" "$PREFIX/README.md"
printf 'RUN_USER=%s\nCREATED_USER=%s\nSRC=%s\n' "$RUN_USER" "$CREATED_USER" "$SRC" > "$PREFIX/install.env"
version=$("$VENV/bin/autotrader" --version)
say "installed $version"

# --- display and service --------------------------------------------------------------------
mkdir -p "$ETC"
if [ ! -f "$ETC/eglfs.json" ]; then
  # The DRM card and connector with a screen attached (card1 on a Pi 5, DSI-1 for the official
  # touchscreen, HDMI-A-1 for a monitor).
  card=/dev/dri/card0 output="" size=""
  for status in /sys/class/drm/card*-*/status; do
    [ -e "$status" ] || continue
    if [ "$(cat "$status")" = connected ]; then
      conn=$(basename "$(dirname "$status")")   # e.g. card1-DSI-1
      card=/dev/dri/${conn%%-*}
      output=$(qt_output_name "${conn#*-}")
      size=$(head -n1 "$(dirname "$status")/modes" 2>/dev/null || true)   # e.g. 720x1280
      break
    fi
  done
  say "screen: $card ${output:-(none connected now: edit $ETC/eglfs.json later)} $size"
  if [ -n "$output" ]; then
    printf '{\n  "device": "%s",\n  "hwcursor": false,\n  "outputs": [{"name": "%s", "mode": "current"}]\n}\n' \
      "$card" "$output" > "$ETC/eglfs.json"
  else
    printf '{\n  "device": "%s",\n  "hwcursor": false\n}\n' "$card" > "$ETC/eglfs.json"
  fi
fi
if [ ! -f "$ETC/autotrader.env" ]; then
  install -m 0644 "$SRC/packaging/autotrader.env" "$ETC/autotrader.env"
  w=${size%%x*} h=${size#*x}
  if [[ $w =~ ^[0-9]+$ && $h =~ ^[0-9]+$ ]] && [ "$h" -gt "$w" ]; then
    # A portrait panel (Touch Display 2 is 720x1280): the app is laid out for landscape.
    printf '\n# pi-install: this screen is %s (portrait). For landscape uncomment:\n#QT_QPA_EGLFS_ROTATION=90\n' \
      "$size" >> "$ETC/autotrader.env"
    echo "    the screen is portrait ($size): see $ETC/autotrader.env to turn it to landscape"
  fi
fi

render_unit "$RUN_USER" "$RUN_GROUP" "$RUN_HOME" "$UNIT.new"
mv "$UNIT.new" "$UNIT"
for t in autotrader-backup.service autotrader-backup.timer; do
  render_unit "$RUN_USER" "$RUN_GROUP" "$RUN_HOME" "/etc/systemd/system/$t" "$t"
done
install -m 0644 "$SRC/packaging/autotrader.desktop" /usr/share/applications/autotrader.desktop
# PYQTGRAPH_QT_LIB: see the unit (Debian's pyqtgraph brings PyQt5/PyQt6 along).
sed -i "s|^Exec=autotrader|Exec=env PYQTGRAPH_QT_LIB=PySide6 $VENV/bin/autotrader|" \
  /usr/share/applications/autotrader.desktop
install -D -m 0644 "$SRC/packaging/autotrader.svg" /usr/share/icons/hicolor/scalable/apps/autotrader.svg
ln -sf "$VENV/bin/autotrader" /usr/local/bin/autotrader

# Without a running systemd (a chroot building an SD-card image, a container) the unit is
# only enabled for the next boot.
SYSTEMD_UP=0
[ -d /run/systemd/system ] && SYSTEMD_UP=1
[ "$SYSTEMD_UP" = 1 ] && systemctl daemon-reload
if ! systemctl enable autotrader.service autotrader-backup.timer >/dev/null 2>&1; then
  mkdir -p /etc/systemd/system/multi-user.target.wants /etc/systemd/system/timers.target.wants
  ln -sf "$UNIT" /etc/systemd/system/multi-user.target.wants/autotrader.service
  ln -sf /etc/systemd/system/autotrader-backup.timer \
    /etc/systemd/system/timers.target.wants/autotrader-backup.timer
fi
if [ "$CONSOLE_BOOT" = 1 ]; then
  systemctl set-default multi-user.target >/dev/null 2>&1 \
    || ln -sf /lib/systemd/system/multi-user.target /etc/systemd/system/default.target
  say "the Pi now boots to the console; the kiosk takes the screen"
elif [ "$(systemctl get-default 2>/dev/null)" = graphical.target ]; then
  echo "    note: the Pi boots to the desktop, which holds the screen; eglfs cannot open it."
  echo "    Boot to the console (sudo raspi-config: System > Boot > Console, or re-run with"
  echo "    --console-boot), or run AutoTrader from the desktop menu instead."
fi

say "checking the set-up as $RUN_USER"
runuser -u "$RUN_USER" -- "$VENV/bin/autotrader" doctor --offline --quick || true
if [ "$START" = 1 ] && [ "$SYSTEMD_UP" = 1 ]; then
  systemctl restart autotrader.service
  systemctl start autotrader-backup.timer
  say "started: systemctl status autotrader; logs: journalctl -u autotrader -f"
elif [ "$START" = 1 ]; then
  say "systemd is not running here: the kiosk starts at the next boot"
fi
say "done. Data: $RUN_HOME/.local/share/autotrader  Config: $RUN_HOME/.config/autotrader/autotrader.toml"
