"""Account behaviour features, kept current on incremental loads.

Each account carries small *aggregate state* properties (``agg_*``: counts, sums, a 24-bin hour
histogram, its active days, inter-arrival sums, a k-minimum-values sketch of prompt hashes).
A new event file is reduced to per-account partial state in pandas, merged into the stored
state (``merge_prompt_state``), and the ``f_*`` features are recomputed from state plus the
account's relationships (``compute_account_features``). Nothing needs the raw events again.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ACCOUNT_FEATURES",
    "ACCOUNT_FEATURES_LABEL",
    "KMV_SIZE",
    "NIGHT_HOURS",
    "PROMPT_STATE_FIELDS",
    "text_hashes",
    "prompt_state_from_events",
    "merge_prompt_state",
    "compute_account_features",
]

ACCOUNT_FEATURES: list[str] = [
    "f_n_prompts",
    "f_active_days",
    "f_prompts_per_active_day",
    "f_account_age_days",
    "f_first_activity_hours",
    "f_night_share",
    "f_hour_entropy",
    "f_interarrival_cv",
    "f_mean_interarrival_hours",
    "f_mean_prompt_len",
    "f_prompt_distinct_ratio",
    "f_distinct_ips",
    "f_ip_events",
    "f_datacenter_ip_share",
    "f_distinct_instruments",
    "f_n_charges",
    "f_prepaid_share",
    "f_foreign_card_share",
    "f_max_prompt_similarity",
    "f_n_similar_accounts",
]

#: The node label ingest writes ``ACCOUNT_FEATURES`` onto; nodes of other labels have none
#: of them (the export's ``features: null`` discovers their own ``f_*`` properties instead).
ACCOUNT_FEATURES_LABEL = "Account"

KMV_SIZE = 64
NIGHT_HOURS = range(0, 6)  # UTC 00:00-05:59
_MS_PER_DAY = 86_400_000
_HASH_SCALE = float(2**63)

# Aggregate state stored on (:Account) for prompts; all integers or lists of integers except sums.
PROMPT_STATE_FIELDS = [
    "agg_n_prompts", "agg_len_n", "agg_len_sum", "agg_hour_hist", "agg_days",
    "agg_first_prompt_ms", "agg_last_prompt_ms", "agg_gap_n", "agg_gap_sum_s",
    "agg_gap_sumsq_s", "agg_text_kmv",
]


def text_hashes(texts: list[str]) -> np.ndarray:
    """Stable 63-bit hashes of prompt texts (non-negative, so they fit Neo4j integers)."""
    return np.array([int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(),
                                    "little") >> 1 for t in texts], dtype=np.int64)


def prompt_state_from_events(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per-account partial state of one file's prompts.

    ``prompts`` has ``account_id``, ``ts_ms`` (int64 epoch ms), ``text_len`` (float, NaN when
    only a minhash was given) and ``text_hash`` (int64, 63-bit).
    """
    df = prompts.sort_values(["account_id", "ts_ms"], kind="stable").reset_index(drop=True)
    acct = df["account_id"]
    ts = df["ts_ms"].to_numpy(np.int64)
    same = np.zeros(len(df), dtype=bool)
    if len(df):
        same[1:] = acct.to_numpy()[1:] == acct.to_numpy()[:-1]
    gap_s = np.where(same, np.diff(ts, prepend=ts[:1]) / 1000.0, np.nan)
    df["gap"] = gap_s
    df["gap2"] = gap_s**2
    df["hour"] = (ts // 3_600_000) % 24
    df["day"] = ts // _MS_PER_DAY
    grouped = df.groupby("account_id", sort=True)
    state = pd.DataFrame({
        "agg_n_prompts": grouped.size(),
        "agg_len_n": grouped["text_len"].count(),
        "agg_len_sum": grouped["text_len"].sum().round().astype(np.int64),
        "agg_first_prompt_ms": grouped["ts_ms"].min(),
        "agg_last_prompt_ms": grouped["ts_ms"].max(),
        "agg_gap_n": grouped["gap"].count(),
        "agg_gap_sum_s": grouped["gap"].sum(),
        "agg_gap_sumsq_s": grouped["gap2"].sum(),
    })
    hours = pd.crosstab(df["account_id"], df["hour"]).reindex(columns=range(24), fill_value=0)
    state["agg_hour_hist"] = hours.reindex(state.index).to_numpy(np.int64).tolist()
    days = df[["account_id", "day"]].drop_duplicates().sort_values(["account_id", "day"])
    state["agg_days"] = _lists_per_account(days, "day")
    kmv = (df[["account_id", "text_hash"]].drop_duplicates()
           .sort_values(["account_id", "text_hash"]).groupby("account_id").head(KMV_SIZE))
    state["agg_text_kmv"] = _lists_per_account(kmv, "text_hash")
    return state.reset_index()


def _lists_per_account(rows: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as one Python list per account; ``rows`` sorted by account (one split, no
    per-group Python call: this runs over millions of prompt rows at a first load)."""
    accounts = rows["account_id"].to_numpy()
    values = rows[column].to_numpy(np.int64)
    if len(accounts) == 0:
        return pd.Series([], dtype=object)
    cuts = np.flatnonzero(accounts[1:] != accounts[:-1]) + 1
    firsts = accounts[np.concatenate([[0], cuts])]
    return pd.Series([part.tolist() for part in np.split(values, cuts)], index=firsts,
                     dtype=object)


def merge_prompt_state(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Combine stored state with a new file's state for one account.

    Counts, sums and histograms add; days and the KMV sketch take unions. The gap between the
    stored last prompt and the new first prompt counts as one more inter-arrival gap when the
    new events come later (the normal daily delta); an out-of-order file adds only its own gaps.
    """
    if not old or old.get("agg_n_prompts") is None:
        return dict(new)
    out: dict[str, Any] = {}
    for key in ("agg_n_prompts", "agg_len_n", "agg_len_sum", "agg_gap_n"):
        out[key] = int(old[key]) + int(new[key])
    for key in ("agg_gap_sum_s", "agg_gap_sumsq_s"):
        out[key] = float(old[key]) + float(new[key])
    out["agg_hour_hist"] = [int(a) + int(b) for a, b in zip(old["agg_hour_hist"],
                                                            new["agg_hour_hist"])]
    out["agg_days"] = sorted(set(old["agg_days"]) | set(new["agg_days"]))
    out["agg_text_kmv"] = sorted(set(old["agg_text_kmv"]) | set(new["agg_text_kmv"]))[:KMV_SIZE]
    out["agg_first_prompt_ms"] = min(int(old["agg_first_prompt_ms"]), int(new["agg_first_prompt_ms"]))
    out["agg_last_prompt_ms"] = max(int(old["agg_last_prompt_ms"]), int(new["agg_last_prompt_ms"]))
    if int(new["agg_first_prompt_ms"]) >= int(old["agg_last_prompt_ms"]):
        bridge = (int(new["agg_first_prompt_ms"]) - int(old["agg_last_prompt_ms"])) / 1000.0
        out["agg_gap_n"] += 1
        out["agg_gap_sum_s"] += bridge
        out["agg_gap_sumsq_s"] += bridge * bridge
    return out


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[col], errors="coerce").fillna(0).to_numpy(np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _list_column(frame: pd.DataFrame, col: str, width: int | None = None) -> list[list[int]]:
    values = frame[col].tolist() if col in frame else [None] * len(frame)
    return [list(v) if v is not None and not (isinstance(v, float) and np.isnan(v))
            else ([0] * width if width else []) for v in values]


def compute_account_features(state: pd.DataFrame) -> pd.DataFrame:
    """``account_id`` plus every ``ACCOUNT_FEATURES`` column, from state and relationship sums.

    Expected columns (missing means zero/empty): the ``agg_*`` prompt state, ``created_ms``,
    ``n_ips``, ``ip_events``, ``dc_events``, ``ip_first_ms``, ``ip_last_ms``, ``n_instruments``,
    ``n_charges``, ``prepaid_instruments``, ``foreign_instruments``, ``pay_first_ms``,
    ``n_similar``, ``max_similarity``. Times are epoch milliseconds.
    """
    columns = {"account_id": state["account_id"].to_numpy()}
    columns.update(_prompt_features(state))
    columns.update(_lifetime_features(state))
    columns.update(_relationship_features(state))
    out = pd.DataFrame({c: columns[c] for c in ["account_id", *ACCOUNT_FEATURES]})
    assert list(out.columns[1:]) == ACCOUNT_FEATURES
    return out


def _prompt_features(state: pd.DataFrame) -> dict[str, np.ndarray]:
    """Volume, timing and diversity of an account's prompts: scripted fleets send many,
    evenly spaced, at any hour, from few distinct templates."""
    n = _num(state, "agg_n_prompts")
    hist = np.array(_list_column(state, "agg_hour_hist", 24), dtype=np.float64).reshape(len(state), 24)
    active_days = np.array([len(d) for d in _list_column(state, "agg_days")], dtype=np.float64)
    probs = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probs > 0, probs * np.log2(probs), 0.0).sum(axis=1)
    night = hist[:, list(NIGHT_HOURS)].sum(axis=1)
    gap_mean, cv = _interarrival(state)
    distinct = _distinct_prompts(_list_column(state, "agg_text_kmv"))
    return {
        "f_n_prompts": n,
        "f_active_days": active_days,
        "f_prompts_per_active_day": _ratio(n, active_days),
        "f_night_share": _ratio(night, n),
        "f_hour_entropy": np.where(n > 0, entropy, 0.0),
        "f_interarrival_cv": cv,
        "f_mean_interarrival_hours": gap_mean / 3600.0,
        "f_mean_prompt_len": _ratio(_num(state, "agg_len_sum"), _num(state, "agg_len_n")),
        "f_prompt_distinct_ratio": np.minimum(_ratio(distinct, n), 1.0),
    }


def _interarrival(state: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean gap (seconds) and its coefficient of variation, from the stored gap sums alone
    (so a daily delta never needs earlier events); CV is 0 below two gaps."""
    gap_n, gap_sum, gap_sq = (_num(state, c) for c in ("agg_gap_n", "agg_gap_sum_s",
                                                       "agg_gap_sumsq_s"))
    gap_mean = _ratio(gap_sum, gap_n)
    gap_var = np.maximum(_ratio(gap_sq, gap_n) - gap_mean**2, 0.0)
    return gap_mean, np.where(gap_n >= 2, _ratio(np.sqrt(gap_var), gap_mean), 0.0)


def _distinct_prompts(kmv: list[list[int]]) -> np.ndarray:
    """Distinct prompt texts per account: exact below ``KMV_SIZE``, else the k-minimum-values
    estimate ``(k - 1) / h_k`` with hashes scaled to [0, 1)."""
    return np.array([
        len(k) if len(k) < KMV_SIZE else (KMV_SIZE - 1) / ((k[KMV_SIZE - 1] + 1) / _HASH_SCALE)
        for k in kmv], dtype=np.float64)


def _lifetime_features(state: pd.DataFrame) -> dict[str, np.ndarray]:
    """Account age at its last activity and delay to its first (prompt, IP or payment): fleet
    accounts are created in batches and put to work at once."""
    created = _num(state, "created_ms")
    starts = [_num(state, c) for c in ("agg_first_prompt_ms", "ip_first_ms", "pay_first_ms")]
    ends = [_num(state, c) for c in ("agg_last_prompt_ms", "ip_last_ms", "pay_first_ms")]
    start_stack = np.stack([np.where(s > 0, s, np.inf) for s in starts])
    first = start_stack.min(axis=0)
    last = np.stack(ends).max(axis=0)
    has_activity = np.isfinite(first)
    age_days = np.where(has_activity, np.maximum(last - created, 0) / _MS_PER_DAY, 0.0)
    first_hours = np.where(has_activity,
                           np.maximum(np.where(has_activity, first, 0) - created, 0) / 3_600_000,
                           0.0)
    return {"f_account_age_days": age_days, "f_first_activity_hours": first_hours}


def _relationship_features(state: pd.DataFrame) -> dict[str, np.ndarray]:
    """Counts and shares over the account's IPs, payment instruments and similar accounts."""
    n_instr = _num(state, "n_instruments")
    return {
        "f_distinct_ips": _num(state, "n_ips"),
        "f_ip_events": _num(state, "ip_events"),
        "f_datacenter_ip_share": _ratio(_num(state, "dc_events"), _num(state, "ip_events")),
        "f_distinct_instruments": n_instr,
        "f_n_charges": _num(state, "n_charges"),
        "f_prepaid_share": _ratio(_num(state, "prepaid_instruments"), n_instr),
        "f_foreign_card_share": _ratio(_num(state, "foreign_instruments"), n_instr),
        "f_max_prompt_similarity": _num(state, "max_similarity"),
        "f_n_similar_accounts": _num(state, "n_similar"),
    }
