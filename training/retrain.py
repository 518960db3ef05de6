"""Scheduled retrain entry point: ``python training/retrain.py [--config training/config.yaml]``.

A thin wrapper over ``sybilgnn retrain`` (all logic lives in ``sybilgnn.retrain``); exit
codes: 0 promoted, 10 not promoted (not better), 3 another run holds the lock, 2 config or
input error, 1 unexpected failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sybilgnn.cli import main


def _split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Global ``--config FILE`` / ``--set K=V`` go before the verb, the rest after it."""
    global_args: list[str] = []
    verb_args: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("--config", "--set") and i + 1 < len(args):
            global_args += args[i:i + 2]
            i += 2
        else:
            verb_args.append(args[i])
            i += 1
    return global_args, verb_args


if __name__ == "__main__":
    global_args, verb_args = _split_args(sys.argv[1:])
    default_config = Path(__file__).with_name("config.yaml")
    if "--config" not in global_args and not Path("sybilgnn.yaml").exists():
        global_args = ["--config", str(default_config), *global_args]
    main([*global_args, "retrain", *verb_args])
