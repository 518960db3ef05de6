"""A scoring run against a simulated world's ground truth (evaluation only, never labels).

On a simulated platform the simulator knows every fake, its campaign and its fleet. This
module measures what an analyst's queue would hold: the precision and recall of the run's
flags over the whole population, the ranking quality of its scores (AUPRC), recall per
campaign, and how well the written fleets match the simulated ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from sybilgnn.errors import InputError

__all__ = ["TruthReport", "read_truth", "truth_report"]

_TRUTH_FILES = ("truth.parquet", "ground_truth.parquet")


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
        out.append(f"  fleets written {self.fleets_written:,}: mean purity "
                   f"{fmt(self.fleet_purity)}, {self.pure_fleets:,} all fake; simulated fleets "
                   f"found (half their members flagged) {self.true_fleets_found:,} of "
                   f"{self.true_fleets:,}")
        return out


def read_truth(directory: str | Path) -> pd.DataFrame | None:
    """The simulator's truth of a data folder (a deliveries root or one world), or None."""
    for name in _TRUTH_FILES:
        path = Path(directory) / name
        if path.is_file():
            truth = pd.read_parquet(path, columns=["account_id", "is_fake", "campaign", "fleet"])
            return truth
    return None


def truth_report(account_ids: Sequence[str] | np.ndarray, scores: np.ndarray, flags: np.ndarray,
                 truth: pd.DataFrame,
                 fleet_members: Mapping[str, Sequence[str]] | None = None) -> TruthReport:
    """Measure the run's ``flags`` and ``scores`` (row i = ``account_ids[i]``) against
    ``truth``; accounts the truth does not know are an error (they were not simulated)."""
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
    _fleet_scores(report, aligned, flags, fleet_members or {})
    return report


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
