#!/usr/bin/env bash
# The main job on embedded defaults: set up, start the local Neo4j, then run the whole
# pipeline (simulate a platform, ingest, retrain with tuning, score, report).
# Extra arguments go to `sybilgnn pipeline` (e.g. `--accounts 50000 --scenario hydra`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg
.venv/bin/sybilgnn neo4j start
exec .venv/bin/sybilgnn pipeline "$@"
