"""Measurements on simulated tables that the tests compare across scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd

TABLE_NAMES = ("accounts", "ip_events", "payments", "prompts", "labels", "ground_truth")

__all__ = ["TABLE_NAMES", "fleet_ip_mates", "fleet_prompt_similarity", "legit_accounts_per_ip"]


def fleet_ip_mates(ip_events: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Mean number of distinct fleet-mates an account shares at least one IP with."""
    fakes = truth[truth.is_fake][["account_id", "fleet"]]
    used = ip_events.merge(fakes, on="account_id")[["fleet", "ip", "account_id"]].drop_duplicates()
    pairs = used.merge(used, on=["fleet", "ip"], suffixes=("", "_mate"))
    pairs = pairs[pairs.account_id != pairs.account_id_mate]
    mates = pairs.groupby("account_id").account_id_mate.nunique()
    return float(mates.reindex(fakes.account_id, fill_value=0).mean())


def _jaccard(a: str, b: str) -> float:
    x, y = set(a.lower().split()), set(b.lower().split())
    return len(x & y) / len(x | y)


def fleet_prompt_similarity(prompts: pd.DataFrame, truth: pd.DataFrame, *, pairs: int = 3000,
                            seed: int = 0) -> float:
    """Mean word-set Jaccard of prompt pairs from different accounts of the same fleet."""
    fake = prompts.merge(truth[truth.is_fake][["account_id", "fleet"]], on="account_id")
    rng = np.random.default_rng(seed)
    scores = []
    for _, group in fake.groupby("fleet"):
        if group.account_id.nunique() < 2:
            continue
        i = rng.integers(0, len(group), pairs // 10)
        j = rng.integers(0, len(group), pairs // 10)
        acc, text = group.account_id.to_numpy(), group.text.to_numpy()
        keep = acc[i] != acc[j]
        scores += [_jaccard(text[a], text[b]) for a, b in zip(i[keep], j[keep])]
    return float(np.mean(scores))


def legit_accounts_per_ip(ip_events: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    legit = truth[~truth.is_fake].account_id
    events = ip_events[ip_events.account_id.isin(legit)]
    return events.groupby("ip").account_id.nunique()
