#!/usr/bin/env bash
# Removes the AutoTrader kiosk installed by pi-install.sh. The data (DBs, config, logs, backups
# in the user's folders) is kept unless --purge is given. The boot target the Pi had before the
# install (the desktop, when --console-boot changed it) is restored.
#
#   sudo bash packaging/pi-uninstall.sh [--prefix DIR] [--purge]
set -euo pipefail

PREFIX=/opt/autotrader
ETC=/etc/autotrader
UNIT=/etc/systemd/system/autotrader.service
PURGE=0

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "pi-uninstall: unknown option $1" >&2; exit 1 ;;
  esac
done

# restore_boot_target TARGET: the boot target from before the install (pi-install.sh
# --console-boot switched it to the console), with or without a running systemd.
restore_boot_target() {
  local prev=$1 now
  [ -n "$prev" ] && [[ $prev =~ ^[a-z.-]+\.target$ ]] || return 0
  now=$(systemctl get-default 2>/dev/null \
        || basename "$(readlink /etc/systemd/system/default.target 2>/dev/null)")
  if [ "$now" != "$prev" ]; then
    systemctl set-default "$prev" >/dev/null 2>&1 \
      || ln -sf "/lib/systemd/system/$prev" /etc/systemd/system/default.target
    echo "the Pi boots to $prev again (as before the install), from the next boot on"
  fi
}

[ "$(id -u)" -eq 0 ] || { echo "run me with sudo" >&2; exit 1; }

RUN_USER="" CREATED_USER=0 PREV_TARGET=""
if [ -f "$PREFIX/install.env" ]; then
  RUN_USER=$(sed -n 's/^RUN_USER=//p' "$PREFIX/install.env")
  CREATED_USER=$(sed -n 's/^CREATED_USER=//p' "$PREFIX/install.env")
  PREV_TARGET=$(sed -n 's/^PREV_TARGET=//p' "$PREFIX/install.env")
fi

if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now autotrader.service autotrader-backup.timer 2>/dev/null || true
fi
rm -f "$UNIT" /etc/systemd/system/multi-user.target.wants/autotrader.service \
  /etc/systemd/system/autotrader-backup.service /etc/systemd/system/autotrader-backup.timer \
  /etc/systemd/system/timers.target.wants/autotrader-backup.timer
rm -rf /etc/systemd/system/autotrader.service.d
rm -f /etc/systemd/system/systemd-time-wait-sync.service.d/autotrader.conf
rmdir /etc/systemd/system/systemd-time-wait-sync.service.d 2>/dev/null || true
restore_boot_target "$PREV_TARGET"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
rm -f /usr/share/applications/autotrader.desktop /usr/share/icons/hicolor/scalable/apps/autotrader.svg
[ -L /usr/local/bin/autotrader ] && rm -f /usr/local/bin/autotrader
rm -rf "$PREFIX" "$ETC"
echo "removed the service and $PREFIX"

if [ -n "$RUN_USER" ] && id "$RUN_USER" >/dev/null 2>&1; then
  home=$(getent passwd "$RUN_USER" | cut -d: -f6)
  data="$home/.local/share/autotrader $home/.config/autotrader $home/.local/state/autotrader"
  if [ "$PURGE" = 1 ]; then
    # shellcheck disable=SC2086  # the three folders, split on purpose
    rm -rf $data
    echo "purged the data: $data"
    if [ "$CREATED_USER" = 1 ]; then
      userdel --remove "$RUN_USER" 2>/dev/null || true
      echo "removed the user $RUN_USER"
    fi
  else
    echo "kept the data (DBs, config, logs, backups) of $RUN_USER in:"
    for d in $data; do [ -e "$d" ] && echo "  $d"; done
    echo "(pi-uninstall.sh --purge removes them too)"
  fi
fi
