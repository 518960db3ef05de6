"""Arrow schemas of the tables the simulator writes (docs/architecture.md section 1)."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["TIMESTAMP", "ACCOUNTS", "IP_EVENTS", "PAYMENTS", "PROMPTS", "LABELS",
           "GROUND_TRUTH", "TABLES"]

TIMESTAMP = pa.timestamp("us", tz="UTC")

ACCOUNTS = pa.schema([
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("created_at", TIMESTAMP, nullable=False),
    pa.field("country", pa.string(), nullable=False),
    pa.field("plan", pa.string(), nullable=False),
])
IP_EVENTS = pa.schema([
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("ip", pa.string(), nullable=False),
    pa.field("timestamp", TIMESTAMP, nullable=False),
    pa.field("asn", pa.int64(), nullable=False),
    pa.field("is_datacenter", pa.bool_(), nullable=False),
])
PAYMENTS = pa.schema([
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("instrument_token", pa.string(), nullable=False),
    pa.field("bin", pa.string(), nullable=False),
    pa.field("issuer_country", pa.string(), nullable=False),
    pa.field("is_prepaid", pa.bool_(), nullable=False),
    pa.field("timestamp", TIMESTAMP, nullable=False),
])
PROMPTS = pa.schema([
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("timestamp", TIMESTAMP, nullable=False),
    pa.field("text", pa.string(), nullable=False),
])
LABELS = pa.schema([
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("label", pa.int64(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("labelled_at", TIMESTAMP, nullable=False),
    pa.field("campaign", pa.string()),
    pa.field("fleet", pa.string()),
])
GROUND_TRUTH = pa.schema([
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("is_fake", pa.bool_(), nullable=False),
    pa.field("campaign", pa.string()),
    pa.field("fleet", pa.string()),
    pa.field("lookalike", pa.string(), nullable=False),  # "", company_team, script_developer
    pa.field("team", pa.string(), nullable=False),       # a company team's id, else ""
])

TABLES: dict[str, pa.Schema] = {
    "accounts": ACCOUNTS, "ip_events": IP_EVENTS, "payments": PAYMENTS, "prompts": PROMPTS,
    "labels": LABELS, "ground_truth": GROUND_TRUTH,
}
