"""A scoring run against a simulated world's ground truth (evaluation only, never labels).

On a simulated platform the simulator knows every fake, its campaign and its fleet. This
module measures what an analyst's queue would hold: the precision and recall of the run's
flags over the whole population, the ranking quality of its scores (AUPRC), recall per
campaign, how well the written fleets match the simulated ones, and how many benign
look-alikes (legit company teams and script developers that share what fleets share) it
flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score

from sybilgnn.errors import InputError

__all__ = ["TruthReport", "loco_against_truth", "read_truth", "truth_report"]

_TRUTH_FILES = ("truth.parquet", "ground_truth.parquet")
_COLUMNS = ["account_id", "is_fake", "campaign", "fleet"]
_LOOKALIKE_COLUMNS = ["lookalike", "team"]   # newer truth files; "" for ordinary accounts


@dataclass
class TruthReport:
    accounts: int
    fakes: int
    flagged: int
    true_flags: int
    precision: float | None        # None: nothing flagged
    recall: float | None           # None: no fake in the population
    auprc: float | None
    campaign_recall: dict[str, tuple[int, int]] = field(default_factory=dict)  # fakes, flagged
    fleets_written: int = 0
    fleet_purity: float | None = None   # mean share of fakes among a written fleet's members
    pure_fleets: int = 0                # written fleets whose members are all fake
    true_fleets: int = 0
    true_fleets_found: int = 0          # simulated fleets with at least half their members flagged
    lookalike_flagged: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind: n, flagged
    teams: int = 0                      # company teams among the benign look-alikes
    teams_flagged: int = 0              # teams with at least half their members flagged
    # the same among accounts without a label (what the model had to find on its own)
    unlabelled: int = 0
    unlabelled_fakes: int = 0
    unlabelled_precision: float | None = None
    unlabelled_recall: float | None = None
    unlabelled_campaign_recall: dict[str, tuple[int, int]] = field(default_factory=dict)
    loco_lines: list[str] = field(default_factory=list)  # ``loco_against_truth``'s table

    def lines(self) -> list[str]:
        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        out = [f"flags against the simulator's ground truth ({self.accounts:,} accounts, "
               f"{self.fakes:,} fake, {self.fakes / max(self.accounts, 1):.1%}):",
               f"  flagged {self.flagged:,}: precision {fmt(self.precision)}, recall "
               f"{fmt(self.recall)}; scores' AUPRC {fmt(self.auprc)}"]
        for campaign, (fakes, flagged) in sorted(self.campaign_recall.items()):
            out.append(f"  {campaign}: {flagged:,} of {fakes:,} flagged "
                       f"(recall {flagged / max(fakes, 1):.3f})")
        if self.unlabelled:
            out.append(f"  among the {self.unlabelled:,} accounts without a label "
                       f"({self.unlabelled_fakes:,} fake): precision "
                       f"{fmt(self.unlabelled_precision)}, recall "
                       f"{fmt(self.unlabelled_recall)}; by campaign " + ", ".join(
                           f"{c} {f:,}/{n:,}" for c, (n, f)
                           in sorted(self.unlabelled_campaign_recall.items())))
        out.append(f"  fleets written {self.fleets_written:,}: mean purity "
                   f"{fmt(self.fleet_purity)}, {self.pure_fleets:,} all fake; simulated fleets "
                   f"found (half their members flagged) {self.true_fleets_found:,} of "
                   f"{self.true_fleets:,}")
        for kind, (n, flagged) in sorted(self.lookalike_flagged.items()):
            teams = (f"; teams with half their members flagged {self.teams_flagged:,} of "
                     f"{self.teams:,}" if kind == "company_team" else "")
            out.append(f"  benign look-alikes {kind}: {flagged:,} of {n:,} flagged "
                       f"(share {flagged / max(n, 1):.3f}){teams}")
        return out + self.loco_lines


def read_truth(directory: str | Path) -> pd.DataFrame | None:
    """The simulator's truth of a data folder (a deliveries root or one world), or None.

    Columns ``account_id, is_fake, campaign, fleet, lookalike, team``; a truth file written
    before look-alikes existed reads with ``lookalike`` and ``team`` empty ("").
    """
    for name in _TRUTH_FILES:
        path = Path(directory) / name
        if path.is_file():
            present = set(pq.read_schema(path).names)
            extra = [c for c in _LOOKALIKE_COLUMNS if c in present]
            truth = pd.read_parquet(path, columns=_COLUMNS + extra)
            for column in _LOOKALIKE_COLUMNS:
                if column not in truth:
                    truth[column] = ""
            return truth
    return None


def truth_report(account_ids: Sequence[str] | np.ndarray, scores: np.ndarray, flags: np.ndarray,
                 truth: pd.DataFrame,
                 fleet_members: Mapping[str, Sequence[str]] | None = None,
                 labelled: np.ndarray | None = None) -> TruthReport:
    """Measure the run's ``flags`` and ``scores`` (row i = ``account_ids[i]``) against
    ``truth``; accounts the truth does not know are an error (they were not simulated).
    ``labelled`` (bool per row) adds the same measures among accounts without a label."""
    ids = pd.Index(np.asarray(account_ids, dtype=object))
    known = truth.set_index("account_id")
    aligned = known.reindex(ids)
    unknown = aligned["is_fake"].isna()
    if unknown.any():
        raise InputError(f"{int(unknown.sum())} scored accounts are not in the ground truth "
                         f"(e.g. {ids[unknown.to_numpy()][0]!r}); evaluate against the world "
                         "they were simulated in")
    fake = aligned["is_fake"].to_numpy(dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    flags = np.asarray(flags, dtype=bool)
    true_flags = int((flags & fake).sum())
    report = TruthReport(
        accounts=len(ids), fakes=int(fake.sum()), flagged=int(flags.sum()),
        true_flags=true_flags,
        precision=true_flags / int(flags.sum()) if flags.any() else None,
        recall=true_flags / int(fake.sum()) if fake.any() else None,
        auprc=float(average_precision_score(fake, scores)) if 0 < fake.sum() < len(fake)
        else None)
    campaigns = aligned["campaign"].to_numpy(dtype=object)
    for campaign in sorted({c for c in campaigns[fake] if c is not None and c == c}):
        mine = fake & (campaigns == campaign)
        report.campaign_recall[str(campaign)] = (int(mine.sum()), int((mine & flags).sum()))
    if labelled is not None:
        _unlabelled_scores(report, ~np.asarray(labelled, dtype=bool), fake, flags, campaigns)
    _fleet_scores(report, aligned, flags, fleet_members or {})
    if "lookalike" in aligned:
        _lookalike_scores(report, aligned, flags)
    return report


def _unlabelled_scores(report: TruthReport, unlabelled: np.ndarray, fake: np.ndarray,
                       flags: np.ndarray, campaigns: np.ndarray) -> None:
    """Precision and recall of the flags among accounts that carried no label."""
    mine = flags & unlabelled
    fakes = fake & unlabelled
    report.unlabelled = int(unlabelled.sum())
    report.unlabelled_fakes = int(fakes.sum())
    report.unlabelled_precision = (float((mine & fake).sum() / mine.sum()) if mine.any()
                                   else None)
    report.unlabelled_recall = (float((mine & fake).sum() / fakes.sum()) if fakes.any()
                                else None)
    for campaign in sorted({c for c in campaigns[fakes] if c is not None and c == c}):
        hit = fakes & (campaigns == campaign)
        report.unlabelled_campaign_recall[str(campaign)] = (int(hit.sum()),
                                                            int((hit & flags).sum()))


def _lookalike_scores(report: TruthReport, aligned: pd.DataFrame, flags: np.ndarray) -> None:
    """Flags among benign look-alikes, per kind, and company teams flagged as a group."""
    kinds = aligned["lookalike"].fillna("").to_numpy(dtype=object)
    for kind in sorted({str(k) for k in kinds if k}):
        mine = kinds == kind
        report.lookalike_flagged[kind] = (int(mine.sum()), int((mine & flags).sum()))
    if "team" in aligned:
        teams = aligned["team"].fillna("").to_numpy(dtype=object)
        member = teams != ""
        shares = pd.Series(flags[member]).groupby(teams[member]).mean()
        report.teams = len(shares)
        report.teams_flagged = int((shares >= 0.5).sum())


def _fleet_scores(report: TruthReport, aligned: pd.DataFrame, flags: np.ndarray,
                  fleet_members: Mapping[str, Sequence[str]]) -> None:
    fake_of = aligned["is_fake"].astype(bool)
    purities = []
    for members in fleet_members.values():
        shares = fake_of.reindex(pd.Index(list(members))).eq(True).to_numpy()
        if shares.size:
            purities.append(float(shares.mean()))
    report.fleets_written = len(purities)
    report.fleet_purity = float(np.mean(purities)) if purities else None
    report.pure_fleets = sum(p == 1.0 for p in purities)
    fleets = aligned["fleet"].to_numpy(dtype=object)
    simulated = pd.Series(flags).groupby(pd.Series(fleets)).mean()
    simulated = simulated[[f is not None and f == f for f in simulated.index]]
    report.true_fleets = len(simulated)
    report.true_fleets_found = int((simulated >= 0.5).sum())


def loco_against_truth(loco: Any, truth: pd.DataFrame, *, n_boot: int = 1000,
                       seed: int = 0) -> list[str]:
    """Leave-one-campaign-out recall at 1% FPR with the negatives the truth confirms.

    As labelled (``LocoResult``), a labelled-legitimate account that is in truth a fake
    counts as a false positive of every model that finds it; among ~150 labelled accounts
    one such account fills the whole 1% budget, so the measure punishes the model that
    finds more. Here each model's stored holdout probabilities (``LocoResult.holdout``) are
    measured again on the same positives (the campaign's labelled fakes) against the
    labelled-legitimate accounts the truth says are legitimate, with a 95% stratified
    bootstrap interval; the as-labelled value stays beside it. Evaluation only.
    """
    from sybilgnn.measures.population import population_metrics

    if not loco.holdout:
        return []
    is_fake = truth.set_index("account_id")["is_fake"]
    models = list(loco.holdout)
    campaigns = sorted({c for per in loco.holdout.values() for c in per})
    lines = ["leave-one-campaign-out recall at 1% FPR against the legitimate accounts the "
             "truth confirms [95% interval] (as labelled):",
             "| held-out campaign | fakes | labelled legit (fakes in truth) | "
             + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
    for campaign in campaigns:
        first = loco.holdout[models[0]][campaign]
        mislabelled = (first.y == 0) & is_fake.reindex(first.keys).fillna(False).to_numpy(bool)
        keep = ~mislabelled
        cells = []
        for model in models:
            held = loco.holdout[model].get(campaign)
            if held is None:
                cells.append("–")
                continue
            clean = population_metrics(held.y[keep], held.probs[keep], 0.5, prevalence=None,
                                       n_boot=n_boot, seed=seed)
            raw = population_metrics(held.y, held.probs, 0.5, prevalence=None, n_boot=0)
            cells.append(_recall_cell(clean, raw))
        lines.append(f"| {campaign} | {int(first.y.sum())} | {int((first.y == 0).sum())} "
                     f"({int(mislabelled.sum())}) | " + " | ".join(cells) + " |")
    return lines


def _recall_cell(clean: dict[str, float], raw: dict[str, float]) -> str:
    metric = "recall_at_1pct_fpr"
    if np.isnan(clean[metric]):
        return "not measurable"
    return (f"{clean[metric]:.3f} [{clean[metric + '_lo']:.3f}, {clean[metric + '_hi']:.3f}] "
            f"({raw[metric]:.3f})")
