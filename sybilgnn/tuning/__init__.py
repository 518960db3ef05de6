"""Hyper-parameter search with Optuna: YAML search space, shared resumable study, pruning."""

from __future__ import annotations

from sybilgnn.tuning._run import (FINISHED_STATES, TuneResult, run_study, snapshot_study_name,
                                  trial_settings, wait_for_running)
from sybilgnn.tuning._space import (DEFAULT_SPACE_FILE, TUNABLE_PARAMS, ParamSpec, SearchSpace,
                                    load_search_space, parse_search_space)
from sybilgnn.tuning._storage import fail_dead_local_trials, make_pruner, open_study
from sybilgnn.tuning._summary import PruningSummary, epochs_of, summarize_pruning

__all__ = [
    "DEFAULT_SPACE_FILE",
    "FINISHED_STATES",
    "ParamSpec",
    "PruningSummary",
    "SearchSpace",
    "TUNABLE_PARAMS",
    "TuneResult",
    "epochs_of",
    "fail_dead_local_trials",
    "load_search_space",
    "make_pruner",
    "open_study",
    "parse_search_space",
    "run_study",
    "snapshot_study_name",
    "summarize_pruning",
    "trial_settings",
    "wait_for_running",
]
