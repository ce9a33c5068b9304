#!/usr/bin/env bash
# Adds AutoTrader to the applications menu of a Linux desktop for the current user (no root):
# the entry starts this checkout's .venv/bin/autotrader (made by `make run`), or the
# `autotrader` found on PATH, or a bundle given with --exe. --remove takes it out again.
#   bash packaging/install-desktop.sh [--exe PATH] [--remove]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
ENTRY=$DATA/applications/autotrader.desktop
ICON=$DATA/icons/hicolor/scalable/apps/autotrader.svg
EXE=""
case "${1:-}" in
  --remove) rm -f "$ENTRY" "$ICON"; echo "removed $ENTRY"; exit 0 ;;
  --exe) EXE=$(realpath "${2:?--exe needs the path of the autotrader program}") ;;
  "") ;;
  *) echo "install-desktop: unknown option $1" >&2; exit 1 ;;
esac
if [ -z "$EXE" ]; then
  if [ -x "$SRC/.venv/bin/autotrader" ]; then
    EXE=$SRC/.venv/bin/autotrader
  elif command -v autotrader >/dev/null; then
    EXE=$(command -v autotrader)
  else
    echo "install-desktop: no autotrader program found: run 'make run' first, or pass --exe" >&2
    exit 1
  fi
fi
[ -x "$EXE" ] || { echo "install-desktop: $EXE is not executable" >&2; exit 1; }
mkdir -p "$(dirname "$ENTRY")" "$(dirname "$ICON")"
install -m 0644 "$SRC/packaging/autotrader.svg" "$ICON"
sed -e "s|^Exec=autotrader|Exec=$EXE|" -e "s|autotrader doctor;|$EXE doctor;|" \
  "$SRC/packaging/autotrader.desktop" > "$ENTRY.new"
mv "$ENTRY.new" "$ENTRY"
if command -v update-desktop-database >/dev/null; then
  update-desktop-database -q "$(dirname "$ENTRY")" || true
fi
echo "added $ENTRY (starts $EXE)"
