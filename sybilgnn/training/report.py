"""The one comparison table per run: GNN and baselines, by split, in markdown."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["report_table", "evaluate_all", "REPORT_COLUMNS"]

REPORT_COLUMNS = (
    ("auroc", "AUROC"), ("auprc", "AUPRC"), ("recall_at_1pct_fpr", "recall@1%FPR"),
    ("recall_at_budget", "recall in queue"), ("precision_at_threshold", "precision@thr"), ("recall_at_threshold", "recall@thr"),
    ("fleet_recall", "fleet recall"), ("ece", "ECE"), ("n", "n"), ("n_positive", "fakes"),
)


def _cell(metrics: dict[str, Any], key: str) -> str:
    """A value with its 95% interval when there is one; "not measurable" with the counts
    when a metric rests on too few accounts."""
    value = metrics.get(key)
    if key in ("n", "n_positive"):
        return "–" if value is None or math.isnan(float(value)) else f"{int(value)}"
    if not isinstance(value, (int, float)) or math.isnan(float(value)):
        if key in _MEASURED and "n_positive" in metrics:
            return (f"not measurable (n = {int(metrics.get('n_positive', 0))} fakes, "
                    f"{int(metrics.get('n_negative', metrics.get('n', 0)))} legit)")
        return "–"
    lo, hi = metrics.get(f"{key}_lo"), metrics.get(f"{key}_hi")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) \
            and not (math.isnan(float(lo)) or math.isnan(float(hi))):
        return f"{float(value):.3f} [{float(lo):.3f}, {float(hi):.3f}]"
    return f"{float(value):.3f}"


_MEASURED = ("auroc", "auprc", "recall_at_1pct_fpr", "recall_at_budget",
             "precision_at_threshold", "recall_at_threshold", "ece")


def report_table(results: dict[str, dict[str, dict[str, float]]],
                 splits: tuple[str, ...] = ("val", "test", "holdout")) -> str:
    """Markdown table, one row per model x split, one column per metric; metrics are at
    the population's prevalence with [95% interval] where the run measured them so."""
    header = "| model | split | " + " | ".join(label for _, label in REPORT_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(REPORT_COLUMNS) + 2)]
    for model, by_split in results.items():
        for split in splits:
            metrics = by_split.get(split)
            if metrics is None:
                continue
            cells = " | ".join(_cell(metrics, key) for key, _ in REPORT_COLUMNS)
            lines.append(f"| {model} | {split} | {cells} |")
    prevalences = {m.get("prevalence") for by_split in results.values()
                   for m in by_split.values() if isinstance(m.get("prevalence"), float)
                   and not math.isnan(m["prevalence"])}
    if len(prevalences) == 1:
        lines.append(f"\nMetrics at population prevalence {prevalences.pop():.4f} (labelled "
                     "accounts reweighted); [95% bootstrap interval]. Recall in queue: the "
                     "split's labelled fakes within a review queue as long as the fakes the "
                     "population is expected to hold, among accounts the model did not learn "
                     "from (no legitimate label enters it).")
    return "\n".join(lines) + "\n"


def evaluate_all(snapshot: Any, settings: Any, result: Any) -> dict[str, Any]:
    """GNN (from ``result.metrics``) next to both baselines on test and holdout.

    Returns ``{'results': model -> split -> metrics, 'table': markdown}``.
    """
    from sybilgnn.training.baselines import run_baselines

    results: dict[str, dict[str, dict[str, float]]] = {"gnn": dict(result.metrics)}
    results.update(run_baselines(snapshot, settings))
    return {"results": results, "table": report_table(results, splits=("test", "holdout"))}
