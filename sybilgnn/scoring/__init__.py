"""Batch scoring: champion model -> scores, flags, fleets and evidence written to Neo4j."""

from __future__ import annotations

from sybilgnn.scoring.bands import BAND_LABELS, ScoreBands, apply_score_bands
from sybilgnn.scoring.evidence import AccountEvidence, explain_accounts
from sybilgnn.scoring.fleets import (
    Fleet,
    FleetLinks,
    FleetSplit,
    SharedNodes,
    assign_fleet_ids,
    build_fleets,
    find_fleet_components,
    fleet_id_for,
    read_active_fleets,
    write_fleets,
)
from sybilgnn.scoring.job import (
    ScoringSummary,
    fleet_links,
    fleet_split,
    run_scoring,
    score_snapshot,
)
from sybilgnn.scoring.writeback import (
    EVIDENCE_PROPERTIES,
    WriteInterrupted,
    ensure_scoring_schema,
    find_resumable_run,
    get_run,
    remove_stale_flags,
    start_run,
    write_scores,
)

__all__ = [
    "BAND_LABELS",
    "EVIDENCE_PROPERTIES",
    "AccountEvidence",
    "Fleet",
    "FleetLinks",
    "FleetSplit",
    "ScoreBands",
    "ScoringSummary",
    "SharedNodes",
    "WriteInterrupted",
    "apply_score_bands",
    "assign_fleet_ids",
    "build_fleets",
    "ensure_scoring_schema",
    "explain_accounts",
    "find_fleet_components",
    "find_resumable_run",
    "fleet_id_for",
    "fleet_links",
    "fleet_split",
    "get_run",
    "read_active_fleets",
    "remove_stale_flags",
    "run_scoring",
    "score_snapshot",
    "start_run",
    "write_fleets",
    "write_scores",
]
