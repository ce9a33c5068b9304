#!/usr/bin/env bash
# Installs the Debian packages Qt needs (offscreen, Xvfb and eglfs alike). Skips what is there.
set -euo pipefail
pkgs=(libgl1 libegl1 libxkbcommon0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0
      fonts-dejavu-core libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
      libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 python3-venv)
# CI also checks the packaging scripts, unit and desktop entry with these (tests/ops):
# the linters (shellcheck, desktop-file-validate, systemd-analyze) and git (pi-upgrade.sh).
if [ "${CI:-}" = true ]; then
  pkgs+=(shellcheck desktop-file-utils git)
  command -v systemd-analyze >/dev/null 2>&1 || pkgs+=(systemd)
fi
command -v dpkg >/dev/null 2>&1 || { echo "not a Debian system: install Qt's runtime libraries yourself"; exit 0; }
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
