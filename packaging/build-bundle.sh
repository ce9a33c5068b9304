#!/usr/bin/env bash
# Builds the self-contained AutoTrader folder bundle with PyInstaller: dist/autotrader/autotrader
# starts without a Python installation. Usage: bash packaging/build-bundle.sh [--smoke|--prepare]
#   VENV=.venv   the virtualenv to build from (pyinstaller is installed there if missing)
#   DIST=dist    where the bundle goes (dist/autotrader/), and a .tar.gz of it beside
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no virtualenv at $VENV: run 'make test' (or 'make run') first"; exit 1; }
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "installing PyInstaller into $VENV"
  "$PY" -m pip install -q -e '.[package]'
fi
if [ "${1:-}" = "--prepare" ]; then  # only install PyInstaller (CI does it before the suite)
  exit 0
fi
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/autotrader.spec
version=$("$DIST/autotrader/autotrader" --version | awk '{print $2}')
arch=$(uname -m)
tar -C "$DIST" -czf "$DIST/autotrader-$version-linux-$arch.tar.gz" autotrader
end=$(date +%s)
echo "bundle: $DIST/autotrader ($(du -sh "$DIST/autotrader" | cut -f1)), archive:" \
  "$DIST/autotrader-$version-linux-$arch.tar.gz, built in $((end - start)) s"
if [ "${1:-}" = "--smoke" ]; then
  bash packaging/smoke-test-bundle.sh "$DIST/autotrader/autotrader"
fi
