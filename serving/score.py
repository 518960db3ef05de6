#!/usr/bin/env python
"""Batch scoring entry point for schedulers: ``python serving/score.py [options]``.

All logic lives in ``sybilgnn.scoring.run_scoring``; this file only forwards the command
line to ``sybilgnn score`` so cron, systemd or Airflow can call a script path. Global
options (``--config FILE``, ``--set section.key=value``) may appear anywhere.
Exit code 0 on success, 2 on a configuration or input error (message on stderr).
"""

from __future__ import annotations

import sys

from sybilgnn.cli import main

_GLOBAL_WITH_VALUE = ("--config", "--set")


def split_arguments(argv: list[str]) -> list[str]:
    """``[global options..., 'score', score options...]`` from any order of both."""
    global_args: list[str] = []
    score_args: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in _GLOBAL_WITH_VALUE:
            global_args += [arg, next(it, "")]
        elif arg.split("=", 1)[0] in _GLOBAL_WITH_VALUE:
            global_args.append(arg)
        else:
            score_args.append(arg)
    return [*global_args, "score", *score_args]


if __name__ == "__main__":
    main(split_arguments(sys.argv[1:]))
