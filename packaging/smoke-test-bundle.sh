#!/usr/bin/env bash
# Smoke test of the PyInstaller bundle: it must start without the build's Python or virtualenv
# (a clean environment, no PYTHONPATH/VIRTUAL_ENV), print its version, find its plugins, run a
# short headless demo that trades, pass doctor and take a backup; and, with the UI built in,
# open its window offscreen.
#   bash packaging/smoke-test-bundle.sh [dist/autotrader/autotrader]
set -euo pipefail
EXE=$(realpath "${1:-dist/autotrader/autotrader}")
[ -x "$EXE" ] || { echo "smoke: no bundle at $EXE (build it: bash packaging/build-bundle.sh)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home"
# Only what a desktop session would have: the bundle must carry everything else.
run() { env -i HOME="$tmp/home" PATH=/usr/bin:/bin LANG=C.UTF-8 "$EXE" "$@"; }
fail() { echo "smoke: FAILED: $*"; exit 1; }
step() { echo "smoke: $*"; }

step "version"
out=$(cd "$tmp" && run --version) || fail "--version exited $?"
[[ $out == "autotrader "* ]] || fail "unexpected --version output: $out"
echo "  $out"

step "plugins"
out=$(cd "$tmp" && run plugins) || fail "plugins exited $?"
grep -Eq '^ *ok +sma_crossover' <<<"$out" || fail "the built-in sma_crossover plugin is missing: $out"

step "headless demo (2 simulated minutes at 600x)"
start=$(date +%s%N)
out=$(cd "$tmp" && timeout 120 env -i HOME="$tmp/home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
      "$EXE" run --headless --minutes 2 --speed 600 --data-dir "$tmp/data" 2>&1) \
  || { echo "$out" | tail -20; fail "the headless demo exited non-zero"; }
echo "$out" | grep -E '^\[' | head -3 | sed 's/^/  /'
grep -q 'Demo SMA' <<<"$out" || { echo "$out" | tail -20; fail "no demo algorithm ran"; }
echo "  ran in $(( ($(date +%s%N) - start) / 1000000 )) ms"

step "doctor"
out=$(cd "$tmp" && run doctor --offline --data-dir "$tmp/data") \
  || { echo "$out"; fail "doctor found problems"; }
grep -Eq 'system DB .*integrity ok.*algorithms [1-9]' <<<"$out" || { echo "$out"; fail "doctor did not see the demo's DB"; }

step "backup and restore --check"
(cd "$tmp" && run backup --data-dir "$tmp/data" --dest "$tmp/bk" --archive) >/dev/null \
  || fail "backup exited non-zero"
archive=$(ls "$tmp"/bk/autotrader-backup-*.tar.gz) || fail "no backup archive written"
(cd "$tmp" && run restore --check "$archive" --data-dir "$tmp/data") >/dev/null \
  || fail "the backup does not check out"

qml_dir=$(dirname "$EXE")/_internal/resources/qml
if compgen -G "$qml_dir/*.qml" >/dev/null; then
  step "window (offscreen, 1 simulated minute)"
  out=$(cd "$tmp" && timeout 120 env -i HOME="$tmp/home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
        QT_QPA_PLATFORM=offscreen QSG_RENDER_LOOP=basic \
        "$EXE" run --minutes 1 --speed 600 --data-dir "$tmp/data" 2>&1) \
    || { echo "$out" | tail -20; fail "the window run exited non-zero"; }
  if grep -q 'the window cannot start' <<<"$out"; then
    echo "$out" | grep 'the window cannot start'
    fail "the UI is not in the bundle"
  fi
  # QML that fails to load (a module or file missing from the bundle) is logged, not fatal.
  if grep -E ' - ERROR - |is not installed|is not a type|ReferenceError|TypeError' <<<"$out"; then
    fail "the window logged errors (above)"
  fi
fi
step "passed"
