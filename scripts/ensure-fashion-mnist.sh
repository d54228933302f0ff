#!/usr/bin/env bash
# Makes sure Fashion-MNIST is where warmstart looks for it; installs the Debian package when it can.
set -euo pipefail
python="${1:-python3}"
found() { "$python" -c 'import sys; from warmstart.data import fashion_mnist as f; sys.exit(0 if f.find_files() else 1)'; }

if found; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Fashion-MNIST not found: installing the Debian package dataset-fashion-mnist" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    found && exit 0
fi
cat >&2 <<MSG
Fashion-MNIST is not on this machine. Any one of these provides it:
  - as root on Debian or Ubuntu: apt-get install dataset-fashion-mnist
  - put the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
    t10k-labels-idx1-ubyte.gz) in a folder and export WARMSTART_DATA_DIR=that/folder
  - when online, warmstart downloads them into ~/.cache/warmstart/fashion-mnist on first use
MSG
# Online, the first use downloads it; offline, say so now rather than half-way through the demo.
if [ "${WARMSTART_OFFLINE:-0}" = 1 ]; then exit 1; fi
"$python" -c 'from warmstart.data import fashion_mnist as f; f.locate()' || exit 1
