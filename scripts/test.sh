#!/usr/bin/env bash
# The test command: set up, install the browser for the Browser check, run the suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser-deps.sh
export MPLBACKEND=Agg
if [ $# -eq 0 ]; then
  set -- -m "not slow and not gpu"
fi
exec .venv/bin/python -m pytest "$@"
