#!/usr/bin/env bash
# Install bnplace for development. When no torch is installed yet, the pinned torch==2.13.0 goes
# first: where the package index holds its CPU build (this project's machines, from a local
# wheel cache) that is what it takes, while pyproject's loose `torch` requirement, resolved on
# its own, could pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import torch" 2>/dev/null; then
    python3 -m pip install -q torch==2.13.0
fi
python3 -m pip install -q -e ".[dev,distributed]"
