"""The one comparison table per run: GNN and baselines, by split, in markdown."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["report_table", "evaluate_all", "REPORT_COLUMNS"]

REPORT_COLUMNS = (
    ("auroc", "AUROC"), ("auprc", "AUPRC"), ("recall_at_1pct_fpr", "recall@1%FPR"),
    ("precision_at_threshold", "precision@thr"), ("recall_at_threshold", "recall@thr"),
    ("fleet_recall", "fleet recall"), ("ece", "ECE"), ("n", "n"), ("n_positive", "fakes"),
)


def _cell(value: Any, key: str) -> str:
    if not isinstance(value, (int, float)) or math.isnan(float(value)):
        return "–"
    return f"{int(value)}" if key in ("n", "n_positive") else f"{float(value):.3f}"


def report_table(results: dict[str, dict[str, dict[str, float]]],
                 splits: tuple[str, ...] = ("val", "test", "holdout")) -> str:
    """Markdown table, one row per model x split, one column per metric."""
    header = "| model | split | " + " | ".join(label for _, label in REPORT_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(REPORT_COLUMNS) + 2)]
    for model, by_split in results.items():
        for split in splits:
            metrics = by_split.get(split)
            if metrics is None:
                continue
            cells = " | ".join(_cell(metrics.get(key), key) for key, _ in REPORT_COLUMNS)
            lines.append(f"| {model} | {split} | {cells} |")
    return "\n".join(lines) + "\n"


def evaluate_all(snapshot: Any, settings: Any, result: Any) -> dict[str, Any]:
    """GNN (from ``result.metrics``) next to both baselines on test and holdout.

    Returns ``{'results': model -> split -> metrics, 'table': markdown}``.
    """
    from sybilgnn.training.baselines import run_baselines

    results: dict[str, dict[str, dict[str, float]]] = {"gnn": dict(result.metrics)}
    results.update(run_baselines(snapshot, settings))
    return {"results": results, "table": report_table(results, splits=("test", "holdout"))}
