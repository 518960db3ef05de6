"""A small hand-built world of event tables whose graph is known exactly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TEMPLATE = "please explain step by step how to build a secure web server in rust"
RAW_IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
RAW_TOKENS = ["tok_visa_secret_1", "tok_mc_secret_2"]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def day1_tables() -> dict[str, pd.DataFrame]:
    accounts = pd.DataFrame({
        "account_id": ["a1", "a2", "a3", "a4"],
        "created_at": [ts("2024-01-01T00:00:00"), ts("2024-01-01T12:00:00"),
                       ts("2024-01-02T00:00:00"), ts("2024-01-03T00:00:00")],
        "country": ["US", "DE", "US", "FR"],
        "plan": ["free", "pro", "api", "team"],
    })
    ip_events = pd.DataFrame({
        "account_id": ["a1", "a1", "a1", "a2", "a3"],
        "ip": [RAW_IPS[0], RAW_IPS[0], RAW_IPS[1], RAW_IPS[1], RAW_IPS[2]],
        "timestamp": [ts("2024-01-02T01:00:00"), ts("2024-01-02T03:00:00"),
                      ts("2024-01-03T10:00:00"), ts("2024-01-02T12:00:00"),
                      ts("2024-01-02T13:00:00")],
        "asn": [100, 100, 200, 200, 300],
        "is_datacenter": [False, False, True, True, False],
    })
    payments = pd.DataFrame({
        "account_id": ["a1", "a1", "a2", "a2"],
        "instrument_token": [RAW_TOKENS[0], RAW_TOKENS[0], RAW_TOKENS[0], RAW_TOKENS[1]],
        "bin": ["411111", "411111", "411111", "550000"],
        "issuer_country": ["US", "US", "US", "FR"],
        "is_prepaid": [True, True, True, False],
        "timestamp": [ts("2024-01-01T06:00:00"), ts("2024-01-02T06:00:00"),
                      ts("2024-01-02T07:00:00"), ts("2024-01-02T08:00:00")],
    })
    prompts = pd.DataFrame({
        "account_id": ["a1", "a1", "a1", "a2", "a3"],
        "timestamp": [ts("2024-01-02T01:00:00"), ts("2024-01-02T03:00:00"),
                      ts("2024-01-03T01:00:00"), ts("2024-01-02T14:00:00"),
                      ts("2024-01-02T15:00:00")],
        "text": [TEMPLATE, TEMPLATE, "hello there", TEMPLATE + " today",
                 "what is the capital of france"],
    })
    labels = pd.DataFrame({
        "account_id": ["a1", "a3"],
        "label": [1, 0],
        "source": ["manual", "manual"],
        "labelled_at": [ts("2024-02-01T00:00:00"), ts("2024-02-02T00:00:00")],
        "campaign": ["c1", None],
        "fleet": ["f1", None],
    })
    return {"accounts": accounts, "ip_events": ip_events, "payments": payments,
            "prompts": prompts, "labels": labels}


def day2_tables() -> dict[str, pd.DataFrame]:
    """New events for a1 and a new account a5 that copies a1's template."""
    accounts = pd.DataFrame({"account_id": ["a5"], "created_at": [ts("2024-01-04T00:00:00")],
                             "country": ["US"], "plan": ["free"]})
    ip_events = pd.DataFrame({
        "account_id": ["a1", "a5"], "ip": [RAW_IPS[0], RAW_IPS[0]],
        "timestamp": [ts("2024-01-04T05:00:00"), ts("2024-01-04T06:00:00")],
        "asn": [100, 100], "is_datacenter": [False, False],
    })
    prompts = pd.DataFrame({
        "account_id": ["a1", "a5", "a1"],
        "timestamp": [ts("2024-01-04T01:00:00"), ts("2024-01-04T02:00:00"),
                      ts("2024-01-04T03:00:00")],
        "text": ["hello there", TEMPLATE, TEMPLATE],
    })
    return {"accounts": accounts, "ip_events": ip_events, "prompts": prompts}


def write_tables(directory: Path, tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.to_parquet(directory / f"{name}.parquet", index=False)
        else:
            out = frame.copy()
            for col in out.columns:
                if pd.api.types.is_datetime64_any_dtype(out[col]):
                    out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.to_csv(directory / f"{name}.csv", index=False)
    return directory
