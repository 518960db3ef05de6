"""A simulated AI platform: legit users (some of them benign look-alikes of fleets) plus
three distillation campaigns run as fleets.

``simulate_platform`` writes the event tables of docs/architecture.md section 1 (and
``ground_truth.parquet`` for evaluation); ``simulate_deliveries`` writes the same world as a
base load plus daily deltas; ``docs/simulator.md`` explains what is modelled.
"""

from __future__ import annotations

from sybilgnn.simulate.deliveries import DeliveriesSummary, default_start_day, simulate_deliveries
from sybilgnn.simulate.lookalikes import LOOKALIKES
from sybilgnn.simulate.platform import CHUNK_ACCOUNTS, SimulationSummary, simulate_platform
from sybilgnn.simulate.scenarios import (
    CAMPAIGNS,
    SCENARIOS,
    CampaignPlan,
    CampaignSpec,
    Scenario,
    get_scenario,
    plan_campaigns,
)
from sybilgnn.simulate.world import PROMPT_CAP, PROMPT_SAMPLE_RATE, WORLD_DAYS, WORLD_END

__all__ = [
    "simulate_platform",
    "SimulationSummary",
    "simulate_deliveries",
    "DeliveriesSummary",
    "default_start_day",
    "Scenario",
    "SCENARIOS",
    "get_scenario",
    "CampaignSpec",
    "CampaignPlan",
    "CAMPAIGNS",
    "plan_campaigns",
    "LOOKALIKES",
    "CHUNK_ACCOUNTS",
    "PROMPT_CAP",
    "PROMPT_SAMPLE_RATE",
    "WORLD_DAYS",
    "WORLD_END",
]
