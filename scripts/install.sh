#!/usr/bin/env bash
# Install bnplace for development. Takes PyTorch's CPU build when no torch is installed yet,
# because a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import torch" 2>/dev/null; then
    python3 -m pip install -q torch==2.13.0
fi
python3 -m pip install -q -e ".[dev,distributed]"
