#!/usr/bin/env bash
# Runs the UI tests against the oldest Qt stack AutoTrader supports: PySide6 6.8 and pyqtgraph
# 0.13.7, the versions Debian 13 (Raspberry Pi OS trixie) ships and the Pi install uses.
# A separate virtualenv (COMPAT_VENV, default build/compat-venv) is made once and reused.
#   bash packaging/ci-compat.sh [pytest args]      (default: tests/ui)
#   bash packaging/ci-compat.sh --prepare         (only make the virtualenv, run nothing)
# The tests run on COMPAT_WORKERS pytest-xdist workers (default 2, as make test; 1 = no xdist).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COMPAT_VENV:-build/compat-venv}
PYTHON=${PYTHON:-python3}
PYSIDE_PIN=${COMPAT_PYSIDE:-6.8.*}
PYQTGRAPH_PIN=${COMPAT_PYQTGRAPH:-0.13.7}
start=$(date +%s)
stamp="$VENV/.compat-$PYSIDE_PIN-$PYQTGRAPH_PIN"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  printf 'PySide6-Essentials==%s\npyqtgraph==%s\n' "$PYSIDE_PIN" "$PYQTGRAPH_PIN" > "$constraints"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c "$constraints" -e '.[dev]'
  touch "$stamp"
fi
versions=$("$VENV/bin/python" -c 'import PySide6, pyqtgraph; print(f"PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}")')
echo "compat: $versions"
case "$versions" in
  "PySide6 ${PYSIDE_PIN%.\*}"*) ;;
  *) echo "compat: expected PySide6 $PYSIDE_PIN"; exit 1 ;;
esac
if [ "${1:-}" = --prepare ]; then
  exit 0
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests/ui)
if [ ! -e "${args[0]}" ] && [ "${args[0]}" = tests/ui ]; then
  echo "compat: no tests/ui yet; nothing to run"
  exit 0
fi
workers=()
[ "${COMPAT_WORKERS:-2}" = 1 ] || workers=(-n "${COMPAT_WORKERS:-2}")
rc=0
QT_QPA_PLATFORM=offscreen QSG_RENDER_LOOP=basic "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  "${workers[@]}" "${args[@]}" || rc=$?
echo "compat: done in $(( $(date +%s) - start )) s (exit $rc)"
exit "$rc"
