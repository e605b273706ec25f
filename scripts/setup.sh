#!/usr/bin/env bash
# Installs everything napari-vesselgraph needs on a fresh Debian/Ubuntu machine with Python >= 3.10:
# the system libraries napari needs headless (X virtual framebuffer + Qt xcb plugins), the CPU build
# of torch, then this project with its test extra. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 \
    libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-image0 libxcb-render-util0 \
    libgl1 libegl1 libfontconfig1 libdbus-1-3 >/dev/null
fi
# torch first: 2.13.0 is a CPU build; an unpinned torch would pull a multi-GB CUDA build
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e ".[test]"
echo "napari-vesselgraph installed: $($PY -c 'import napari_vesselgraph as m; print(m.__version__)')"
