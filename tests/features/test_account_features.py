from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sybilgnn.features import ACCOUNT_FEATURES, compute_account_features
from sybilgnn.features.account_features import (
    PROMPT_STATE_FIELDS,
    merge_prompt_state,
    prompt_state_from_events,
    text_hashes,
)

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


def _events(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    texts = [r[2] for r in rows]
    return pd.DataFrame({"account_id": [r[0] for r in rows], "ts_ms": [r[1] for r in rows],
                         "text_len": [float(len(t)) for t in texts],
                         "text_hash": text_hashes(texts)})


EVENTS = [("a1", T0 + 25 * H, "aaaa"), ("a1", T0 + 27 * H, "aaaa"), ("a1", T0 + 49 * H, "bb"),
          ("a2", T0 + 38 * H, "cccccc")]


def test_features_exact_on_tiny_example() -> None:
    state = prompt_state_from_events(_events(EVENTS))
    state["created_ms"] = [T0, T0]
    state["n_ips"] = [2, 0]
    state["ip_events"] = [3, 0]
    state["dc_events"] = [1, 0]
    state["ip_first_ms"] = [T0 + 25 * H, None]
    state["ip_last_ms"] = [T0 + 58 * H, None]
    state["n_instruments"] = [1, 0]
    state["n_charges"] = [2, 0]
    state["prepaid_instruments"] = [1, 0]
    state["foreign_instruments"] = [0, 0]
    state["pay_first_ms"] = [T0 + 6 * H, None]
    state["n_similar"] = [1, 0]
    state["max_similarity"] = [0.875, None]
    f = compute_account_features(state).set_index("account_id")
    assert list(f.columns) == ACCOUNT_FEATURES
    a1 = f.loc["a1"]
    assert a1["f_n_prompts"] == 3
    assert a1["f_active_days"] == 2
    assert a1["f_prompts_per_active_day"] == 1.5
    assert a1["f_night_share"] == 1.0  # hours 01, 03, 01 UTC
    assert a1["f_hour_entropy"] == pytest.approx(-(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3))
    # gaps 2 h and 22 h: mean 12 h, population std 10 h
    assert a1["f_mean_interarrival_hours"] == pytest.approx(12.0)
    assert a1["f_interarrival_cv"] == pytest.approx(10 / 12)
    assert a1["f_mean_prompt_len"] == pytest.approx(10 / 3)
    assert a1["f_prompt_distinct_ratio"] == pytest.approx(2 / 3)
    assert a1["f_account_age_days"] == pytest.approx(58 / 24)
    assert a1["f_first_activity_hours"] == pytest.approx(6.0)
    assert a1["f_datacenter_ip_share"] == pytest.approx(1 / 3)
    assert (a1["f_distinct_ips"], a1["f_ip_events"], a1["f_distinct_instruments"],
            a1["f_n_charges"], a1["f_prepaid_share"], a1["f_foreign_card_share"]) == (
        2, 3, 1, 2, 1.0, 0.0)
    assert (a1["f_max_prompt_similarity"], a1["f_n_similar_accounts"]) == (0.875, 1)
    a2 = f.loc["a2"]
    assert a2["f_interarrival_cv"] == 0.0 and a2["f_night_share"] == 0.0
    assert a2["f_hour_entropy"] == 0.0 and a2["f_account_age_days"] == pytest.approx(38 / 24)
    assert not f.isna().any().any()


def test_merging_daily_state_equals_state_of_all_events() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.integers(T0, T0 + 10 * 24 * H, size=60))
    rows = [("acct", int(t), f"prompt {int(rng.integers(0, 20))}") for t in times]
    whole = prompt_state_from_events(_events(rows)).iloc[0].to_dict()
    merged: dict[str, object] | None = None
    for day in range(10):
        part = [r for r in rows if T0 + day * 24 * H <= r[1] < T0 + (day + 1) * 24 * H]
        if part:
            merged = merge_prompt_state(merged, prompt_state_from_events(_events(part)).iloc[0]
                                        .to_dict())
    assert merged is not None
    for key in PROMPT_STATE_FIELDS:
        if isinstance(whole[key], float):
            assert merged[key] == pytest.approx(whole[key]), key
        else:
            assert merged[key] == whole[key], key


def test_no_activity_gives_zero_features() -> None:
    f = compute_account_features(pd.DataFrame({"account_id": ["z"], "created_ms": [T0]}))
    assert f[ACCOUNT_FEATURES].to_numpy().tolist() == [[0.0] * len(ACCOUNT_FEATURES)]
