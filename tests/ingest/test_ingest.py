"""Ingest against the real Neo4j: exact graph, idempotency, incremental loads, hashing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sybilgnn.cli import main
from sybilgnn.config import Settings
from sybilgnn.features import ACCOUNT_FEATURES, keyed_hash, load_secret, minhash_signatures
from sybilgnn.ingest import ingest_directory
from tests.ingest.world import RAW_IPS, RAW_TOKENS, TEMPLATE, day1_tables, day2_tables, write_tables

pytestmark = pytest.mark.neo4j


def _counts(driver: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for label in ("Account", "IP", "PaymentInstrument", "IngestFile", "IngestBatch"):
        out[label] = driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS c").records[0]["c"]
    for rel in ("USED_IP", "PAID_WITH", "PROMPT_SIMILAR"):
        out[rel] = driver.execute_query(f"MATCH ()-[r:{rel}]->() RETURN count(r) AS c").records[0]["c"]
    return out


def _graph_dump(driver: Any, *, change_stamps: bool = True) -> tuple[list[Any], list[Any]]:
    """Every node (labels, properties) and relationship, with time-of-ingest fields removed;
    without ``change_stamps``, also without what incremental scoring reads (the change
    counter and ``changed_seq``: a first bulk load is always followed by a full run)."""
    nodes = driver.execute_query(
        "MATCH (n) WHERE NOT n:IngestFile AND ($stamps OR NOT n:ChangeClock) "
        "RETURN labels(n) AS l, properties(n) AS p", stamps=change_stamps).records
    if not change_stamps:
        for record in nodes:
            record["p"].pop("changed_seq", None)
    rels = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN coalesce(a.account_id, '') AS a, type(r) AS t, "
        "coalesce(b.account_id, b.ip_id, b.pm_id) AS b, properties(r) AS p").records
    return (sorted(repr((r["l"], sorted(r["p"].items()))) for r in nodes),
            sorted(repr((r["a"], r["t"], r["b"], sorted(r["p"].items()))) for r in rels))


def _account(driver: Any, account_id: str) -> dict[str, Any]:
    return dict(driver.execute_query("MATCH (a:Account {account_id: $id}) RETURN a",
                                     id=account_id).records[0]["a"])


def _rel(driver: Any, rel: str, a: str, key: str, value: str) -> dict[str, Any]:
    assert rel in {"USED_IP", "PAID_WITH"} and key in {"ip_id", "pm_id"}
    return dict(driver.execute_query(
        f"MATCH (:Account {{account_id: $a}})-[r:{rel}]->(n {{{key}: $v}}) RETURN r",
        a=a, v=value).records[0]["r"])


def test_small_world_exact_graph(neo4j_settings: Settings, neo4j_driver: Any,
                                 tmp_path: Path) -> None:
    directory = write_tables(tmp_path / "day1", day1_tables())
    summary = ingest_directory(neo4j_settings, directory, driver=neo4j_driver)
    assert _counts(neo4j_driver) == {"Account": 4, "IP": 3, "PaymentInstrument": 2,
                                     "IngestFile": 5, "IngestBatch": 0, "USED_IP": 4,
                                     "PAID_WITH": 3, "PROMPT_SIMILAR": 1}
    assert summary.relationships == {"USED_IP": 4, "PAID_WITH": 3, "PROMPT_SIMILAR": 1}
    assert {t: s.rows_loaded for t, s in summary.tables.items()} == {
        "accounts": 4, "labels": 2, "ip_events": 5, "payments": 4, "prompts": 5}
    assert summary.rows_quarantined == 0 and summary.features_updated == 4

    secret = load_secret(neo4j_settings.hashing)
    ip0 = keyed_hash(RAW_IPS[0], secret)
    used = _rel(neo4j_driver, "USED_IP", "a1", "ip_id", ip0)
    assert used["n_events"] == 2
    assert used["first_seen"].iso_format().startswith("2024-01-02T01:00:00")
    assert used["last_seen"].iso_format().startswith("2024-01-02T03:00:00")
    paid = _rel(neo4j_driver, "PAID_WITH", "a1", "pm_id", keyed_hash(RAW_TOKENS[0], secret))
    assert paid["n_charges"] == 2 and paid["first_seen"].iso_format().startswith("2024-01-01T06")
    ip = dict(neo4j_driver.execute_query("MATCH (i:IP {ip_id: $id}) RETURN i",
                                         id=keyed_hash(RAW_IPS[1], secret)).records[0]["i"])
    assert ip == {"ip_id": keyed_hash(RAW_IPS[1], secret), "asn": 200, "is_datacenter": True,
                  "changed_seq": 1}

    sim = neo4j_driver.execute_query(
        "MATCH (a:Account)-[r:PROMPT_SIMILAR]->(b:Account) "
        "RETURN a.account_id AS a, b.account_id AS b, r.similarity AS s, r.n_shared AS n").records
    sig, _ = minhash_signatures([TEMPLATE, TEMPLATE + " today"], num_perm=64)
    assert [(r["a"], r["b"], r["n"]) for r in sim] == [("a1", "a2", 1)]
    assert sim[0]["s"] == pytest.approx(float((sig[0] == sig[1]).mean()))

    a1 = _account(neo4j_driver, "a1")
    assert (a1["label"], a1["label_source"], a1["campaign"], a1["fleet"]) == (1, "manual", "c1", "f1")
    assert a1["label_at"].iso_format().startswith("2024-02-01T00:00:00")
    assert (a1["country"], a1["plan"]) == ("US", "free")
    assert set(ACCOUNT_FEATURES) <= set(a1)
    assert (a1["f_n_prompts"], a1["f_active_days"], a1["f_distinct_ips"], a1["f_ip_events"],
            a1["f_distinct_instruments"], a1["f_n_charges"], a1["f_n_similar_accounts"]) == (
        3, 2, 2, 3, 1, 2, 1)
    assert a1["f_night_share"] == 1.0
    assert a1["f_datacenter_ip_share"] == pytest.approx(1 / 3)
    assert a1["f_interarrival_cv"] == pytest.approx(10 / 12)
    assert a1["f_prompt_distinct_ratio"] == pytest.approx(2 / 3)
    # last activity 2024-01-03T10:00 (an IP event); first 2024-01-01T06:00 (a charge)
    assert a1["f_account_age_days"] == pytest.approx(58 / 24)
    assert a1["f_first_activity_hours"] == pytest.approx(6.0)
    a2 = _account(neo4j_driver, "a2")
    assert a2["f_prepaid_share"] == 0.5 and a2["f_foreign_card_share"] == 1.0  # DE account
    a4 = _account(neo4j_driver, "a4")
    assert [a4[f] for f in ACCOUNT_FEATURES] == [0.0] * len(ACCOUNT_FEATURES)
    assert "label" not in a4

    constraints = {r["name"] for r in neo4j_driver.execute_query(
        "SHOW CONSTRAINTS YIELD name RETURN name").records}
    assert {"account_id_unique", "ip_id_unique", "pm_id_unique", "fleet_id_unique",
            "scoring_run_id_unique"} <= constraints


def test_raw_identifiers_never_stored(neo4j_settings: Settings, neo4j_driver: Any,
                                      tmp_path: Path) -> None:
    ingest_directory(neo4j_settings, write_tables(tmp_path / "d", day1_tables(), "csv"),
                     driver=neo4j_driver)
    values = neo4j_driver.execute_query(
        "MATCH (n) UNWIND keys(n) AS k RETURN n[k] AS v "
        "UNION ALL MATCH ()-[r]->() UNWIND keys(r) AS k RETURN r[k] AS v").records
    flat: list[str] = []
    for record in values:
        v = record["v"]
        flat.extend(str(x) for x in (v if isinstance(v, list) else [v]))
    assert len(flat) > 100
    for raw in RAW_IPS + RAW_TOKENS:
        assert not any(raw in value for value in flat), raw
    # another secret gives other ids for the same raw address
    other = keyed_hash(RAW_IPS[0], b"another-secret")
    assert other not in flat and keyed_hash(RAW_IPS[0], load_secret(neo4j_settings.hashing)) in flat


def test_ingest_twice_is_identical(neo4j_settings: Settings, neo4j_driver: Any,
                                   tmp_path: Path) -> None:
    directory = write_tables(tmp_path / "day1", day1_tables())
    ingest_directory(neo4j_settings, directory, driver=neo4j_driver)
    before_counts, before = _counts(neo4j_driver), _graph_dump(neo4j_driver)
    again = ingest_directory(neo4j_settings, directory, driver=neo4j_driver)
    assert {s.status for s in again.tables.values()} == {"skipped"}
    assert _counts(neo4j_driver) == before_counts
    assert _graph_dump(neo4j_driver) == before


def test_incremental_day2(neo4j_settings: Settings, neo4j_driver: Any, tmp_path: Path) -> None:
    ingest_directory(neo4j_settings, write_tables(tmp_path / "d1", day1_tables()),
                     driver=neo4j_driver)
    day2 = write_tables(tmp_path / "d2", day2_tables())
    summary = ingest_directory(neo4j_settings, day2, driver=neo4j_driver)
    counts = _counts(neo4j_driver)
    assert counts == {"Account": 5, "IP": 3, "PaymentInstrument": 2, "IngestFile": 8,
                      "IngestBatch": 0, "USED_IP": 5, "PAID_WITH": 3, "PROMPT_SIMILAR": 2}
    assert summary.features_updated == 2  # a1 and a5 (a2's edges did not change)
    secret = load_secret(neo4j_settings.hashing)
    used = _rel(neo4j_driver, "USED_IP", "a1", "ip_id", keyed_hash(RAW_IPS[0], secret))
    assert used["n_events"] == 3
    assert used["first_seen"].iso_format().startswith("2024-01-02T01:00:00")
    assert used["last_seen"].iso_format().startswith("2024-01-04T05:00:00")
    a1 = _account(neo4j_driver, "a1")
    assert (a1["f_n_prompts"], a1["f_active_days"], a1["f_n_similar_accounts"]) == (5, 3, 2)
    gaps = np.array([2.0, 22.0, 24.0, 2.0])  # the 24 h gap bridges day 1 and day 2
    assert a1["f_interarrival_cv"] == pytest.approx(gaps.std() / gaps.mean())
    assert a1["f_prompt_distinct_ratio"] == pytest.approx(2 / 5)
    pairs = neo4j_driver.execute_query(
        "MATCH (a)-[r:PROMPT_SIMILAR]->(b) RETURN a.account_id AS a, b.account_id AS b "
        "ORDER BY a, b").records
    assert [(r["a"], r["b"]) for r in pairs] == [("a1", "a2"), ("a1", "a5")]
    # what day 2 touched carries its change value (incremental scoring starts there)
    stamped = neo4j_driver.execute_query(
        "MATCH (n) WHERE n.changed_seq = 2 RETURN coalesce(n.account_id, n.ip_id, n.pm_id) "
        "AS id ORDER BY id").records
    # a1 and a5 (new events, a new similarity edge), and the IP both used; not a2
    assert [r["id"] for r in stamped] == sorted(["a1", "a5", keyed_hash(RAW_IPS[0], secret)])
    # day 2 again, then day 1 again: nothing changes
    dump = _graph_dump(neo4j_driver)
    ingest_directory(neo4j_settings, day2, driver=neo4j_driver)
    ingest_directory(neo4j_settings, tmp_path / "d1", driver=neo4j_driver)
    assert _counts(neo4j_driver) == counts and _graph_dump(neo4j_driver) == dump


def test_similarity_cap_holds_across_loads(neo4j_settings: Settings, neo4j_driver: Any,
                                           tmp_path: Path) -> None:
    settings = neo4j_settings.model_copy(deep=True)
    settings.similarity.max_edges_per_account = 2
    tables = day1_tables()
    ingest_directory(settings, write_tables(tmp_path / "d1", tables), driver=neo4j_driver)
    day2 = day2_tables()
    day2["accounts"] = day2["accounts"].iloc[[0, 0]].assign(account_id=["a5", "a6"])
    day2["prompts"] = day2["prompts"].iloc[[1, 1, 2]].assign(account_id=["a5", "a6", "a1"])
    day2["ip_events"] = day2["ip_events"].iloc[:0]
    ingest_directory(settings, write_tables(tmp_path / "d2", day2), driver=neo4j_driver)
    degree = neo4j_driver.execute_query(
        "MATCH (a:Account) RETURN a.account_id AS id, COUNT { (a)-[:PROMPT_SIMILAR]-() } AS d, "
        "a.f_n_similar_accounts AS f ORDER BY id").records
    assert max(r["d"] for r in degree) <= 2
    assert all(r["d"] == r["f"] for r in degree)
    assert sum(r["d"] for r in degree) // 2 == 3  # a1-a5, a1-a6 (exact copies), a5-a6


def test_cli_ingest(neo4j_settings: Settings, neo4j_driver: Any, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_tables(tmp_path / "d", day1_tables(), "csv")
    n, h = neo4j_settings.neo4j, neo4j_settings.hashing
    main([f"--set=neo4j.bolt_port={n.bolt_port}", f"--set=neo4j.password_file={n.password_file}",
          f"--set=hashing.secret_file={h.secret_file}", "ingest", str(directory)])
    out = capsys.readouterr().out
    assert "accounts   accounts.csv: 4 rows, 4 loaded, 0 quarantined" in out
    assert "USED_IP 4" in out
    assert _counts(neo4j_driver)["Account"] == 4
