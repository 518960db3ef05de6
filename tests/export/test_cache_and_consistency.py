"""Cache hits and misses, consistency under concurrent writes, MLflow logging, the CLI verb."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.export import export_snapshot, log_snapshot_to_mlflow
from tests.export.small_graph import small_settings

pytestmark = pytest.mark.neo4j


def test_cache_hit_on_unchanged_graph_and_miss_after_changes(
        small_graph: Any, neo4j_settings: Settings, tmp_path: Path) -> None:
    settings = small_settings(neo4j_settings, tmp_path / "cache")
    first = export_snapshot(settings, driver=small_graph)
    assert first.meta["cache_hit"] is False
    assert (tmp_path / "cache" / first.content_hash / "snapshot.json").exists()
    second = export_snapshot(settings, driver=small_graph)
    assert second.meta["cache_hit"] is True and second.content_hash == first.content_hash
    assert second.data["account"].x.tolist() == first.data["account"].x.tolist()

    small_graph.execute_query(
        "MATCH (a:Account {account_id: $a}), (i:IP {ip_id: $i}) CREATE (a)-[:USED_IP {n_events: 1}]->(i)",
        a="a12", i="ip2")
    third = export_snapshot(settings, driver=small_graph)
    assert third.meta["cache_hit"] is False and third.content_hash != first.content_hash
    assert third.meta["relationships_exported"]["used_ip"] == 7

    small_graph.execute_query("MATCH (a:Account {account_id: 'a12'}) SET a.f_a = 99.0")
    fourth = export_snapshot(settings, driver=small_graph)
    assert fourth.meta["cache_hit"] is False and fourth.content_hash != third.content_hash

    # A write the export does not read misses the fingerprint but dedupes by content hash.
    small_graph.execute_query("MATCH (a:Account {account_id: 'a12'}) SET a.sybil_score = 0.5")
    fifth = export_snapshot(settings, driver=small_graph)
    assert fifth.meta["cache_hit"] is False and fifth.content_hash == fourth.content_hash
    assert export_snapshot(settings, driver=small_graph).meta["cache_hit"] is True
    assert export_snapshot(settings, driver=small_graph, use_cache=False).meta["cache_hit"] is False


def _write_batches(driver: Any, stop: threading.Event, commits: list[float]) -> None:
    """New accounts, each with an edge to a new IP, an old IP and an old account."""
    batch = 0
    while not stop.is_set():
        driver.execute_query(
            "UNWIND range(0, 19) AS i "
            "WITH i, 'w' + $batch + '-' + i AS key "
            "CREATE (a:Account {account_id: key, f_a: 1.0, f_b: 2.0}) "
            "CREATE (a)-[:USED_IP {n_events: 2}]->(:IP {ip_id: 'wip' + key, asn: 1, is_datacenter: false}) "
            "WITH a, i MATCH (old:Account {account_id: 'b' + i}) "
            "MATCH (ip:IP {ip_id: 'ip' + i}) "
            "CREATE (a)-[:USED_IP {n_events: 1}]->(ip) "
            "CREATE (old)-[:PROMPT_SIMILAR {similarity: 0.7}]->(a)",
            batch=batch)
        commits.append(time.monotonic())
        batch += 1
        stop.wait(0.05)  # leave the (shared) CPU to the export between batches


def test_snapshot_is_not_torn_by_concurrent_writes(neo4j_driver: Any, neo4j_settings: Settings,
                                                    tmp_path: Path) -> None:
    neo4j_driver.execute_query("CREATE CONSTRAINT IF NOT EXISTS FOR (a:Account) REQUIRE a.account_id IS UNIQUE")
    neo4j_driver.execute_query("CREATE CONSTRAINT IF NOT EXISTS FOR (i:IP) REQUIRE i.ip_id IS UNIQUE")
    neo4j_driver.execute_query(
        "UNWIND range(0, 299) AS i CREATE (a:Account {account_id: 'b' + i, f_a: toFloat(i), f_b: 1.0,"
        " country: 'US', plan: 'free'}) CREATE (a)-[:USED_IP {n_events: i % 5}]->"
        "(:IP {ip_id: 'ip' + i, asn: i % 7, is_datacenter: i % 2 = 0})")
    neo4j_driver.execute_query(
        "UNWIND range(0, 298) AS i MATCH (a:Account {account_id: 'b' + i}),"
        " (b:Account {account_id: 'b' + (i + 1)}) CREATE (a)-[:PROMPT_SIMILAR {similarity: 0.9}]->(b)")
    neo4j_driver.execute_query("CREATE (:PaymentInstrument {pm_id: 'pm0', issuer_country: 'US', is_prepaid: false})"
                               "<-[:PAID_WITH {n_charges: 1}]-(:Account {account_id: 'solo', f_a: 0.0, f_b: 0.0})")
    settings = small_settings(neo4j_settings, tmp_path / "cache")
    settings = settings.model_copy(update={"export": settings.export.model_copy(
        update={"chunk_size": 25})})
    before, _, _ = neo4j_driver.execute_query("MATCH (a:Account) RETURN collect(a.account_id) AS k")

    stop, commits = threading.Event(), []
    writer = threading.Thread(target=_write_batches, args=(neo4j_driver, stop, commits))
    writer.start()
    try:
        while not commits:
            time.sleep(0.01)
        started = time.monotonic()
        snap = export_snapshot(settings, driver=neo4j_driver)
        finished = time.monotonic()
    finally:
        stop.set()
        writer.join()
    assert any(started < t < finished for t in commits), "no write overlapped the export"
    assert snap.meta["point_in_time"] is False

    pairs, _, _ = neo4j_driver.execute_query(
        "MATCH (a:Account)-[r:USED_IP|PROMPT_SIMILAR]->(b) RETURN type(r) AS t,"
        " a.account_id AS a, coalesce(b.ip_id, b.account_id) AS b")
    in_graph = {(r["t"], r["a"], r["b"]) for r in pairs}
    keys_now, _, _ = neo4j_driver.execute_query("MATCH (a:Account) RETURN collect(a.account_id) AS k")
    accounts = snap.id_maps["account"]
    assert set(before[0]["k"]) <= set(accounts) <= set(keys_now[0]["k"])
    for node_type in ("account", "ip", "payment"):
        assert snap.data[node_type].x.shape[0] == len(snap.id_maps[node_type]) == snap.data[node_type].num_nodes
    assert snap.data["account"].y.shape[0] == len(accounts)
    for key, rel in ((("account", "used_ip", "ip"), "USED_IP"),
                     (("account", "prompt_similar", "account"), "PROMPT_SIMILAR")):
        src, dst = snap.data[key].edge_index
        assert int(src.max()) < len(accounts) and int(dst.max()) < snap.data[key[2]].num_nodes
        for s, d in zip(src.tolist(), dst.tolist()):
            a, b = accounts[s], snap.id_maps[key[2]][d]
            assert (rel, a, b) in in_graph or (rel == "PROMPT_SIMILAR" and (rel, b, a) in in_graph)
    # Nothing that was torn got cached under the fingerprint: the next export reads again.
    assert export_snapshot(settings, driver=neo4j_driver).meta["cache_hit"] is False


def test_log_snapshot_to_mlflow(small_graph: Any, neo4j_settings: Settings, tmp_path: Path) -> None:
    import mlflow

    snap = export_snapshot(small_settings(neo4j_settings, tmp_path / "cache"), driver=small_graph)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("export-test", artifact_location=str(tmp_path / "art"))
    with mlflow.start_run(experiment_id=experiment) as run:
        log_snapshot_to_mlflow(snap)
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.digest == snap.content_hash[:32]
    assert dataset.name == f"snapshot-{snap.content_hash[:12]}"
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_cli_export_writes_a_loadable_snapshot(small_graph: Any, neo4j_settings: Settings,
                                               tmp_path: Path, capsys: Any) -> None:
    from sybilgnn.cli import main

    config = tmp_path / "sybilgnn.yaml"
    nodes = {name: node.model_dump() for name, node in neo4j_settings.export.nodes.items()}
    nodes["account"]["features"] = ["f_b"]
    config.write_text(yaml.safe_dump({"export": {"nodes": nodes}}))
    n = neo4j_settings.neo4j
    args = ["--config", str(config)]
    args += [f"--set=neo4j.{k}={getattr(n, k)}" for k in ("home", "password_file", "bolt_port")]
    args += [f"--set=export.cache_dir={tmp_path / 'cache'}", "export", "--out", str(tmp_path / "out")]
    main(args)
    loaded = Snapshot.load(tmp_path / "out")
    assert len(loaded.id_maps["account"]) == 12
    assert loaded.feature_names["account"][:2] == ["f_b", "country=US"]
    out = capsys.readouterr().out
    assert f"snapshot {loaded.content_hash[:12]}" in out and "account 12" in out
