"""Operations over time: replay day-by-day deliveries, score daily, retrain on a cadence."""

from __future__ import annotations

from sybilgnn.replay.changes import changed_nodes, within_reach
from sybilgnn.replay.run import DayRecord, FleetDelay, ReplaySummary, delivery_dirs, run_replay

__all__ = ["DayRecord", "FleetDelay", "ReplaySummary", "changed_nodes", "delivery_dirs",
           "run_replay", "within_reach"]
