#!/usr/bin/env bash
# Installs what the headless GPU backend needs on Debian 12: Xvfb (a virtual X display)
# and the X/GL headers that the optional `gl` package compiles against, then builds `gl`.
# Run as root (CI is root). Without it everything still works on the CPU backends.
set -euo pipefail
pkgs="xvfb xauth libxi-dev libx11-dev libxext-dev libgl1-mesa-dev libglu1-mesa-dev pkg-config python3 g++ make"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup-gl: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
fi
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then
  npm ci
elif [ ! -d node_modules/gl ]; then
  # README's main command ran first (`npm install` before the X headers were here): the
  # optional gl failed to build and npm dropped it, so there is nothing to rebuild. npm
  # install puts back what the lockfile lists and is missing, building gl now.
  echo "setup-gl: installing and building the gl package (a few minutes)"
  npm install --no-audit --no-fund
elif ! node -e "require('gl')" >/dev/null 2>&1; then
  echo "setup-gl: building the gl package (a few minutes)"
  npm rebuild gl
fi
xvfb-run -a node -e "const g = require('gl')(1, 1); if (!g) { console.error('setup-gl: gl loads but cannot make a context under Xvfb'); process.exit(1) } console.log('setup-gl: headless GL works (' + g.getParameter(g.VERSION) + ')')"
