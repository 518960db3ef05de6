"""A small known account graph, written with parameterised Cypher, and settings to export it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sybilgnn.config import NodeSchema, Settings

DAY = 86_400.0
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# account_id, f_a, f_b, country, plan, label, label_at (days after T0), campaign, fleet
ACCOUNTS: list[dict[str, Any]] = [
    {"id": "a01", "f_a": 1.0, "f_b": 10.0, "country": "US", "plan": "free", "label": 0, "day": 1, "campaign": None, "fleet": None},
    {"id": "a02", "f_a": 2.0, "f_b": None, "country": "US", "plan": "pro", "label": 1, "day": 2, "campaign": "c1", "fleet": "c1-f1"},
    {"id": "a03", "f_a": 3.0, "f_b": 30.0, "country": "DE", "plan": "free", "label": 1, "day": 3, "campaign": "c1", "fleet": "c1-f1"},
    {"id": "a04", "f_a": 4.0, "f_b": 40.0, "country": "FR", "plan": "api", "label": 0, "day": 4, "campaign": None, "fleet": None},
    {"id": "a05", "f_a": 5.0, "f_b": 50.0, "country": None, "plan": "free", "label": 1, "day": 5, "campaign": "c1", "fleet": "c1-f2"},
    {"id": "a06", "f_a": 6.0, "f_b": 60.0, "country": "US", "plan": "team", "label": 0, "day": 6, "campaign": None, "fleet": None},
    {"id": "a07", "f_a": 7.0, "f_b": 70.0, "country": "DE", "plan": "free", "label": 1, "day": 7, "campaign": "c2", "fleet": "c2-f1"},
    {"id": "a08", "f_a": 8.0, "f_b": 80.0, "country": "US", "plan": "free", "label": 0, "day": 8, "campaign": None, "fleet": None},
    {"id": "a09", "f_a": 9.0, "f_b": 90.0, "country": "US", "plan": "pro", "label": 1, "day": 9, "campaign": "c2", "fleet": "c2-f1"},
    {"id": "a10", "f_a": 10.0, "f_b": 100.0, "country": "DE", "plan": "free", "label": 0, "day": 10, "campaign": None, "fleet": None},
    {"id": "a11", "f_a": 11.0, "f_b": 110.0, "country": "US", "plan": "free", "label": None, "day": None, "campaign": None, "fleet": None},
    {"id": "a12", "f_a": 12.0, "f_b": 120.0, "country": "US", "plan": "free", "label": None, "day": None, "campaign": None, "fleet": None},
]
IPS = [{"id": "ip1", "asn": 100, "dc": True}, {"id": "ip2", "asn": 200, "dc": False},
       {"id": "ip3", "asn": 100, "dc": True}]
PAYMENTS = [{"id": "pm1", "issuer": "US", "prepaid": True}, {"id": "pm2", "issuer": "GB", "prepaid": False}]
USED_IP = [("a02", "ip1", 3), ("a03", "ip1", 1), ("a05", "ip1", 7), ("a01", "ip2", 2),
           ("a07", "ip3", 4), ("a09", "ip3", None)]
PAID_WITH = [("a02", "pm1", 1), ("a03", "pm1", 2), ("a04", "pm2", 5)]
PROMPT_SIMILAR = [("a02", "a03", 0.9), ("a03", "a05", 0.8), ("a07", "a09", 0.75)]
# account_id, review, reviewed_at (days after T0)
VERDICTS = [("a04", "confirmed", 11), ("a09", "false_positive", 12), ("a11", "confirmed", 13)]


def write_small_graph(driver: Any, *, verdicts: bool = False) -> None:
    """The known graph of this module; timestamps as DateTime like the ingest writes them."""
    driver.execute_query(
        "UNWIND $rows AS row CREATE (a:Account {account_id: row.id, f_a: row.f_a, f_b: row.f_b,"
        " country: row.country, plan: row.plan, label: row.label, campaign: row.campaign,"
        " fleet: row.fleet})"
        " WITH a, row WHERE row.day IS NOT NULL"
        " SET a.label_at = datetime({epochSeconds: toInteger($t0 + row.day * $day)}),"
        " a.label_source = 'platform'",
        rows=ACCOUNTS, t0=T0, day=DAY)
    driver.execute_query("UNWIND $rows AS row CREATE (:IP {ip_id: row.id, asn: row.asn,"
                         " is_datacenter: row.dc})", rows=IPS)
    driver.execute_query("UNWIND $rows AS row CREATE (:PaymentInstrument {pm_id: row.id,"
                         " issuer_country: row.issuer, is_prepaid: row.prepaid})", rows=PAYMENTS)
    driver.execute_query(
        "UNWIND $rows AS row MATCH (a:Account {account_id: row[0]}), (i:IP {ip_id: row[1]})"
        " CREATE (a)-[:USED_IP {n_events: row[2]}]->(i)", rows=[list(r) for r in USED_IP])
    driver.execute_query(
        "UNWIND $rows AS row MATCH (a:Account {account_id: row[0]}),"
        " (p:PaymentInstrument {pm_id: row[1]}) CREATE (a)-[:PAID_WITH {n_charges: row[2]}]->(p)",
        rows=[list(r) for r in PAID_WITH])
    driver.execute_query(
        "UNWIND $rows AS row MATCH (a:Account {account_id: row[0]}), (b:Account {account_id: row[1]})"
        " CREATE (a)-[:PROMPT_SIMILAR {similarity: row[2], n_shared: 1}]->(b)",
        rows=[list(r) for r in PROMPT_SIMILAR])
    if verdicts:
        write_verdicts(driver)


def write_verdicts(driver: Any) -> None:
    driver.execute_query(
        "UNWIND $rows AS row MATCH (a:Account {account_id: row[0]}) SET a.review = row[1],"
        " a.reviewed_at = datetime({epochSeconds: toInteger($t0 + row[2] * $day)})",
        rows=[list(r) for r in VERDICTS], t0=T0, day=DAY)


def small_settings(base: Settings, cache_dir: Path, **split: Any) -> Settings:
    """Explicit account features (f_a, f_b) and a cache folder of the test's own."""
    nodes = dict(base.export.nodes)
    nodes["account"] = NodeSchema(label="Account", key="account_id", features=["f_a", "f_b"],
                                  categorical={"country": 2, "plan": 4})
    export = base.export.model_copy(update={"nodes": nodes, "cache_dir": cache_dir,
                                            "chunk_size": 5})
    split_settings = base.split.model_copy(update=split)
    return base.model_copy(update={"export": export, "split": split_settings})
