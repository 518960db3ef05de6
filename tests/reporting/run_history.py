"""Drift and score histograms on the scored graph's runs, plus older runs, for the report tests.

run-2 (latest) stores drift over 17 inputs, written out of order; run-1 is from before drift
and histograms were stored. Nine older finished runs old-01..old-09 (2024-12-0k) and one
still running (old-running) come before them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

#: run-2's drift, deliberately not sorted; PSI 0.25 equals drift_warn, so it is not marked.
RUN2_DRIFT = ([("account.f_age_days", 0.12), ("account.country", 1.155809), ("ip.asn", 0.25),
               ("account.f_n_prompts", 0.31)]
              + [(f"account.f_k{k:02d}", round(0.001 * k, 6)) for k in range(1, 14)])
#: run-2's scores over 20 bins of [0, 1]; 30 accounts.
RUN2_HIST = [4, 3, 3, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 5, 7]
#: What the scoring job stores (``sybilgnn.scoring.job._run_statistics``).
STATISTICS = {"score_hist", "drift_inputs", "drift_psi", "drift_max", "drift_warn"}


def old_runs() -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = [
        {"run_id": f"old-{k:02d}", "model_version": "1", "threshold": 0.5,
         "started_at": datetime(2024, 12, k, 2, 0, tzinfo=timezone.utc),
         "finished_at": datetime(2024, 12, k, 2, 30, tzinfo=timezone.utc), "status": "finished",
         "n_scored": 20 + k, "n_flagged": k, "n_fleets": k % 3,
         "score_hist": [k] + [0] * 18 + [20], "drift_inputs": ["account.country"],
         "drift_psi": [round(0.05 * k, 6)], "drift_max": round(0.05 * k, 6), "drift_warn": 0.3}
        for k in range(1, 10)]
    runs.append({"run_id": "old-running", "model_version": "1", "threshold": 0.5,
                 "started_at": datetime(2024, 12, 5, 12, 0, tzinfo=timezone.utc),
                 "status": "running", "n_scored": 99, "n_flagged": 99, "n_fleets": 99})
    return runs


def add_run_history(driver: Any) -> None:
    run2 = {"drift_inputs": [name for name, _ in RUN2_DRIFT],
            "drift_psi": [psi for _, psi in RUN2_DRIFT],
            "drift_max": max(psi for _, psi in RUN2_DRIFT), "drift_warn": 0.25,
            "score_hist": RUN2_HIST}
    assert set(run2) == STATISTICS
    with driver.session() as session:
        session.run("MATCH (r:ScoringRun {run_id: 'run-2'}) SET r += $stats",
                    stats=run2).consume()
        session.run("UNWIND $rows AS row CREATE (r:ScoringRun) SET r = row",
                    rows=old_runs()).consume()
