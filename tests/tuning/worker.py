"""A tuning worker process for the tests: ``python -m tests.tuning.worker SNAPSHOT N MODE OVERRIDES``.

MODE is ``each`` (run N trials here) or ``total`` (stop once the study holds N finished).
OVERRIDES is a JSON list of ``section.key=value`` settings.
"""

from __future__ import annotations

import json
import sys

import torch

from sybilgnn.config import load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.tuning import run_study


def main(argv: list[str]) -> None:
    snapshot_dir, n_trials, mode, overrides = argv
    torch.set_num_threads(1)
    settings = load_settings(config_file=None, overrides=json.loads(overrides), environ={})
    result = run_study(Snapshot.load(snapshot_dir), settings, n_trials=int(n_trials),
                       until_total=mode == "total")
    print(json.dumps(result.counts))


if __name__ == "__main__":
    main(sys.argv[1:])
