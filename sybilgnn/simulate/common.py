"""The world's clock, the plans, the caps of the tables and the volume rules every population
module shares (kept apart so that ``world`` and ``lookalikes`` do not import each other)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from sybilgnn.simulate.vocab import COUNTRY_WEIGHTS

__all__ = ["DAY", "HOUR", "WORLD_DAYS", "WORLD_END", "PLANS", "PROMPT_SAMPLE_RATE",
           "PROMPT_CAP", "IP_EVENT_CAP", "country_p", "sampled_prompts", "sessions"]

DAY, HOUR = 86_400, 3_600
WORLD_DAYS = 180
# Fixed, seed-independent end of the simulated window, so runs are reproducible.
WORLD_END = int(datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp())
PLANS = ("free", "pro", "team", "api")
PROMPT_SAMPLE_RATE = 0.2   # the prompts table keeps a uniform sample of interactions...
PROMPT_CAP = 300           # ...and at most this many per account
IP_EVENT_CAP = 150


def country_p() -> np.ndarray:
    p = np.asarray(COUNTRY_WEIGHTS, dtype=np.float64)
    return p / p.sum()


def sampled_prompts(rng: np.random.Generator, interactions: np.ndarray) -> np.ndarray:
    """Stored prompts: a binomial sample of the rounded interactions (uncapped)."""
    return rng.binomial(np.round(interactions).astype(np.int64), PROMPT_SAMPLE_RATE)


def sessions(rng: np.random.Generator, n_prompts: np.ndarray, automated: np.ndarray) -> np.ndarray:
    """IP sessions per account: automation keeps sessions open, so fewer per prompt."""
    base = np.where(automated, 2.0 + 0.06 * n_prompts, 1.0 + 0.3 * n_prompts)
    return np.minimum(IP_EVENT_CAP, 1 + rng.poisson(base)).astype(np.int64)
