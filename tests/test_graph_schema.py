"""The graph schema every stage reads, and a graph unlike the default one end to end.

The end-to-end world has no accounts, IPs or payments: only ``(:Worker)`` nodes with a few
numeric ``f_*`` properties, a label and its time, and ``[:COWORKED]`` relationships. Rings
of fake workers co-work densely among themselves. Export, retrain (training, refit,
baselines, registry, promotion), scoring, fleets, evidence, write-back and the report run on
it with configuration only.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sybilgnn.config import ConfigError, ModelSettings, Settings, load_settings
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.models import build_model
from sybilgnn.training.predict import load_model, predict_logits
from tests.registry.stores import make_settings, mlflow_uri
from tests.synthetic import planted_snapshot

__all__ = ["mlflow_uri"]  # the shared MLflow store fixture

WORKER_SCHEMA: dict[str, Any] = {
    "nodes": {"worker": {"label": "Worker", "key": "worker_id", "features": None}},
    "relationships": {"coworked": {"type": "COWORKED", "source": "worker",
                                   "target": "worker", "weight": "hours",
                                   "transform": "log1p"}},
    "labels": {"node_type": "worker", "label": "label", "label_time": "label_at",
               "fleet": None},
    "fleet_relations": ["coworked"],
}


def test_default_schema_answers_with_the_default_names() -> None:
    schema = GraphSchema.from_settings(Settings())
    assert schema.labelled == "account"
    assert (schema.labelled_node.label, schema.labelled_node.key) == ("Account", "account_id")
    assert schema.fleet_relations == ("used_ip", "paid_with", "prompt_similar")
    assert schema.messages_to_labelled() == {
        ("ip", "rev_used_ip", "account"): "USED_IP",
        ("payment", "rev_paid_with", "account"): "PAID_WITH",
        ("account", "prompt_similar", "account"): "PROMPT_SIMILAR"}
    assert [(h.edge_type, h.hub.name, h.labelled_end, h.hub.fleet_count)
            for h in schema.fleet_hubs()] == [
        (("account", "used_ip", "ip"), "ip", 0, "n_shared_ips"),
        (("account", "paid_with", "payment"), "payment", 0, "n_shared_instruments")]
    assert schema.fleet_links() == [("account", "prompt_similar", "account")]
    assert schema.id_map_schema == {"account": "account_id", "ip": "ip_id", "payment": "pm_id"}


def test_custom_schema_from_configuration_only() -> None:
    settings = Settings.model_validate({"export": WORKER_SCHEMA})
    schema = GraphSchema.from_settings(settings)
    assert (schema.labelled, schema.labelled_node.label) == ("worker", "Worker")
    assert schema.fleet_hubs() == []
    assert schema.fleet_links() == [("worker", "coworked", "worker")]
    assert schema.messages_to_labelled() == {("worker", "coworked", "worker"): "COWORKED"}
    # null fleet relations: every relationship at the labelled node type
    settings = Settings.model_validate({"export": {**WORKER_SCHEMA, "fleet_relations": None}})
    assert GraphSchema.from_settings(settings).fleet_relations == ("coworked",)


def test_device_hub_relation_ending_at_the_labelled_type() -> None:
    export = {"nodes": {"user": {"label": "User", "key": "uid"},
                        "device": {"label": "Device", "key": "did"}},
              "relationships": {"owns": {"type": "OWNS", "source": "device", "target": "user"}},
              "labels": {"node_type": "user"}}
    schema = GraphSchema.from_settings(Settings.model_validate({"export": export}))
    [hub] = schema.fleet_hubs()
    assert (hub.edge_type, hub.labelled_end, hub.hub.fleet_count) == (
        ("device", "owns", "user"), 1, "n_shared_device")
    assert schema.messages_to_labelled() == {("device", "owns", "user"): "OWNS"}


@pytest.mark.parametrize("fleet_relations, message", [
    ("[used_ip, coworked]", "export.fleet_relations: 'coworked' is not in export.relationships"),
    ("[asn_of]", "export.fleet_relations: 'asn_of' links 'ip' to 'asn', neither of them the "
                 "labelled node type 'account'"),
])
def test_fleet_relations_are_validated_with_the_setting_named(
        tmp_path: Path, fleet_relations: str, message: str) -> None:
    config = tmp_path / "sybilgnn.yaml"
    config.write_text(
        "export:\n"
        "  nodes:\n"
        "    account: {label: Account, key: account_id}\n"
        "    ip: {label: IP, key: ip_id}\n"
        "    asn: {label: ASN, key: asn}\n"
        "  relationships:\n"
        "    used_ip: {type: USED_IP, source: account, target: ip}\n"
        "    asn_of: {type: IN_ASN, source: ip, target: asn}\n"
        f"  fleet_relations: {fleet_relations}\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(config_file=config, environ={})


def test_schema_rechecks_settings_changed_without_validation() -> None:
    settings = Settings()
    settings = settings.model_copy(update={"export": settings.export.model_copy(
        update={"fleet_relations": ["renamed_ip"]})})
    with pytest.raises(ConfigError, match="export.fleet_relations: 'renamed_ip'"):
        GraphSchema.from_settings(settings)


def test_models_saved_before_the_target_was_recorded_score_accounts() -> None:
    snapshot = planted_snapshot(accounts=200, seed=3)
    data = snapshot.data
    model = build_model(data.metadata(), {t: int(data[t].x.size(1)) for t in data.node_types},
                        ModelSettings(hidden=8))
    config = model.config_dict()
    assert config["target"] == "account"
    del config["target"]  # as model.json was written before
    old = load_model(json.loads(json.dumps(config)), model.state_dict())
    assert old.target == "account"
    np.testing.assert_array_equal(predict_logits(old, snapshot, "cpu"),
                                  predict_logits(model.eval(), snapshot, "cpu"))
    # the same model on a graph whose labels live on another node type: a clear refusal
    data["ip"].y = torch.full((int(data["ip"].num_nodes),), -1)
    del data["account"].y
    with pytest.raises(InputError, match="the model scores 'account' nodes but the snapshot "
                                         "carries its labels on 'ip'"):
        predict_logits(old, snapshot, "cpu")


# -- end to end ---------------------------------------------------------------------------

RINGS, RING_SIZE, LEGIT = 8, 6, 152
LABEL_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _worker_world(seed: int = 5) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Workers (rings of fakes first) and COWORKED rows ``[a, b, hours]``."""
    rng = np.random.default_rng(seed)
    workers: list[dict[str, Any]] = []
    n = RINGS * RING_SIZE + LEGIT
    for i in range(n):
        fake = i < RINGS * RING_SIZE
        row: dict[str, Any] = {
            "id": f"w{i:03d}",
            "f_tasks_per_day": float(rng.normal(40, 4) if fake else rng.normal(20, 6)),
            "f_error_rate": float(rng.normal(0.02, 0.005) if fake else rng.normal(0.05, 0.02)),
            "f_night_share": float(rng.uniform(0.4, 0.8) if fake else rng.uniform(0.0, 0.3)),
            "seniority": int(rng.integers(0, 10)),  # not f_*: not a feature
            "label": None, "label_at": None}
        if rng.random() < 0.7:
            row["label"] = int(fake)
            row["label_at"] = LABEL_START + timedelta(days=float(rng.uniform(0, 60)))
        workers.append(row)
    edges: list[list[Any]] = []
    for ring in range(RINGS):
        members = range(ring * RING_SIZE, (ring + 1) * RING_SIZE)
        edges += [[f"w{a:03d}", f"w{b:03d}", 8.0] for a in members for b in members if a < b]
    legit = np.arange(RINGS * RING_SIZE, n)
    for a in legit:
        for b in rng.choice(legit[legit != a], 2, replace=False):
            edges.append([f"w{a:03d}", f"w{int(b):03d}", float(rng.uniform(1, 6))])
    return workers, edges


def _worker_settings(neo4j_settings: Settings, tmp_path: Path, mlflow_uri: str) -> Settings:
    registry = make_settings(tmp_path, mlflow_uri, [])
    tree = neo4j_settings.model_dump(mode="json")
    tree.update(registry=registry.model_dump(mode="json")["registry"],
                tune=registry.model_dump(mode="json")["tune"],
                export={**WORKER_SCHEMA, "cache_dir": str(tmp_path / "snapshots")})
    tree["split"].update(holdout_property=None)
    tree["train"].update(epochs=40, min_epochs=10, patience=10, device="cpu", prevalence=0.24,
                         bootstrap=0, crossfit_folds=3)
    tree["model"].update(hidden=16)
    tree["scoring"].update(report_dir=str(tmp_path / "reports"), batch_size=64)
    return Settings.model_validate(tree)  # validated, as load_settings would


def _expected_fleets(ids: np.ndarray, flagged: np.ndarray, edges: list[list[Any]],
                     min_size: int) -> set[frozenset[str]]:
    """Connected components of at least ``min_size`` flagged workers over COWORKED."""
    row = {str(w): i for i, w in enumerate(ids)}
    pairs = np.array([[row[a], row[b]] for a, b, _ in edges
                      if flagged[row[a]] and flagged[row[b]]], dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(ids), len(ids)))
    _, comp = connected_components(graph, directed=False)
    groups: dict[int, set[str]] = {}
    for i in np.flatnonzero(flagged):
        groups.setdefault(int(comp[i]), set()).add(str(ids[i]))
    return {frozenset(g) for g in groups.values() if len(g) >= min_size}


@pytest.mark.neo4j
def test_worker_graph_goes_through_export_retrain_score_and_write_back(
        neo4j_driver: Any, neo4j_settings: Settings, tmp_path: Path, mlflow_uri: str) -> None:
    from sybilgnn.export import export_snapshot
    from sybilgnn.registry import load_registered_model
    from sybilgnn.reporting.data import fleet_graph
    from sybilgnn.reporting.report import write_report
    from sybilgnn.retrain import retrain
    from sybilgnn.scoring import run_scoring

    workers, edges = _worker_world()
    neo4j_driver.execute_query(
        "UNWIND $rows AS row CREATE (w:Worker {worker_id: row.id}) "
        "SET w.f_tasks_per_day = row.f_tasks_per_day, w.f_error_rate = row.f_error_rate, "
        "w.f_night_share = row.f_night_share, w.seniority = row.seniority, "
        "w.label = row.label, w.label_at = row.label_at", rows=workers)
    neo4j_driver.execute_query(
        "UNWIND $rows AS row MATCH (a:Worker {worker_id: row[0]}) "
        "MATCH (b:Worker {worker_id: row[1]}) CREATE (a)-[:COWORKED {hours: row[2]}]->(b)",
        rows=edges)
    settings = _worker_settings(neo4j_settings, tmp_path, mlflow_uri)

    outcome = retrain(settings, n_trials=0)
    assert outcome.decision.promoted  # the first model becomes champion
    summary = run_scoring(settings, driver=neo4j_driver)

    # What the model read: only workers, their own f_* properties, COWORKED both ways.
    snapshot = export_snapshot(settings, driver=neo4j_driver)
    assert list(snapshot.data.node_types) == ["worker"]
    assert list(snapshot.data.edge_types) == [("worker", "coworked", "worker")]
    assert snapshot.feature_names["worker"] == ["f_error_rate", "f_night_share",
                                                "f_tasks_per_day"]
    loaded = load_registered_model(settings, "champion")
    assert loaded.target == "worker" and loaded.id_map_schema == {"worker": "worker_id"}

    # Every worker scored by this run, with the champion's scores.
    ids = np.asarray(snapshot.id_maps["worker"], dtype=object)
    expected = loaded.predict(snapshot)
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (w:Worker) RETURN w.worker_id AS id, w.sybil_score AS score, w.run_id AS run, "
        "w.sybil_flag AS flag, w:Flagged AS flagged, w.label_conflict AS conflict, "
        "w.evidence_relations AS relations, w.evidence_neighbours AS neighbours")
    by_id = {r["id"]: r for r in records}
    assert len(by_id) == len(workers) == summary.n_scored
    assert {r["run"] for r in records} == {summary.run_id}
    np.testing.assert_allclose([by_id[str(w)]["score"] for w in ids], expected,
                               rtol=1e-5, atol=1e-6)

    # Flags: scores at or above the threshold, except workers labelled legitimate.
    labels = snapshot.data["worker"].y.numpy()
    above = expected >= loaded.threshold
    flagged = above & (labels != 0)
    assert flagged.sum() >= RING_SIZE  # not a vacuous run
    assert {r["id"] for r in records if r["flagged"]} == set(ids[flagged].astype(str))
    assert {r["id"] for r in records if r["flag"]} == set(ids[flagged].astype(str))
    assert summary.n_flagged == int(flagged.sum())
    assert {r["id"] for r in records if r["conflict"]} == set(ids[above & (labels == 0)])
    for r in records:
        if r["flagged"]:
            assert r["relations"] and all(rel.startswith("COWORKED:") for rel in r["relations"])
            assert all(n.startswith("COWORKED worker:w") for n in r["neighbours"])

    # Fleets: exactly the COWORKED components of flagged workers, members only workers.
    fleets, _, _ = neo4j_driver.execute_query(
        "MATCH (f:Fleet {active: true}) OPTIONAL MATCH (m)-[:MEMBER_OF]->(f) "
        "RETURN f.fleet_id AS id, f.size AS size, keys(f) AS keys, "
        "collect(m.worker_id) AS members, all(x IN collect(m) WHERE x:Worker) AS workers")
    want = _expected_fleets(ids, flagged, edges, settings.scoring.min_fleet_size)
    assert want and {frozenset(f["members"]) for f in fleets} == want
    assert summary.n_fleets == len(want) and all(f["workers"] for f in fleets)
    assert all(f["size"] == len(f["members"]) for f in fleets)
    assert not any(k.startswith("n_shared_") for f in fleets for k in f["keys"])
    others, _, _ = neo4j_driver.execute_query(
        "MATCH (n) WHERE NOT n:Worker AND NOT n:Fleet AND NOT n:ScoringRun "
        "RETURN count(n) AS n")
    assert others[0]["n"] == 0  # nothing written to an account-shaped schema

    # The report draws fleets along COWORKED only.
    report = write_report(settings, summary.run_id, driver=neo4j_driver)
    assert "Top fleets" in report.read_text()
    with neo4j_driver.session() as session:
        drawing = fleet_graph(session, fleets[0]["id"], GraphSchema.from_settings(settings))
    assert {rel for _, _, rel in drawing.edges} <= {"MEMBER_OF", "COWORKED"}
    assert {kind for _, kind in drawing.nodes} <= {"flagged", "worker", "fleet"}
    # drawn in the accounts' colours, and the schema's own relation gets one of its own
    from sybilgnn.reporting.figures import edge_colours, node_colours

    assert node_colours(drawing)["worker"] == "#4C8EDA"
    assert edge_colours(drawing)["COWORKED"] == "#2A9D8F"

    # The analysts' saved queries and verdicts, built for this schema, find the same workers.
    _analysts_see_the_worker_graph(neo4j_driver, settings, summary.run_id, by_id, edges,
                                   {f["id"]: set(f["members"]) for f in fleets},
                                   set(ids[above & (labels == 0)].astype(str)))

    # A model of this schema refuses a graph configured the default way, and says why.
    default_way = settings.model_copy(update={"export": Settings().export})
    with pytest.raises(InputError, match="scores 'worker' nodes, but export.labels.node_type "
                                         "is 'account'"):
        run_scoring(default_way, driver=neo4j_driver)


def _analysts_see_the_worker_graph(driver: Any, settings: Settings, run_id: str,
                                   by_id: dict[str, Any], edges: list[list[Any]],
                                   fleets: dict[str, set[str]], conflicts: set[str]) -> None:
    """Saved queries, ``record_verdict`` and ``sybilgnn verdict`` on the scored worker graph."""
    from click.testing import CliRunner

    from sybilgnn.browser import query_by_name, record_verdict
    from sybilgnn.cli import cli

    schema = GraphSchema.from_settings(settings)

    def rows(name: str, **params: Any) -> list[Any]:
        query = query_by_name(name, schema)
        with driver.session() as session:
            return list(session.run(query.cypher, {**query.params, **params}))

    listed = rows("fleets", min_size=0, limit=1000)
    assert {r["fleet_id"]: r["size"] for r in listed} == {f: len(m) for f, m in fleets.items()}
    assert all(r.keys() == ["fleet_id", "size", "mean_score", "first_seen", "last_seen"]
               for r in listed)  # no shared-node counts: COWORKED links workers directly

    fleet_id, members = max(fleets.items(), key=lambda item: (len(item[1]), item[0]))
    paths = [r["p"] for r in rows("fleet_subgraph", fleet_id=fleet_id)]
    drawn = {n.get("worker_id") or n.get("fleet_id") for p in paths for n in p.nodes}
    assert drawn == members | {fleet_id}
    links = {(r.start_node["worker_id"], r.end_node["worker_id"]) for p in paths
             for r in p.relationships if r.type == "COWORKED"}
    assert links == {(a, b) for a, b, _ in edges if a in members and b in members}
    assert sum(r.type == "MEMBER_OF" for p in paths for r in p.relationships) == len(members)

    (changes,) = rows("changes")
    assert changes.data() == {
        "run_id": run_id, "previous_run_id": None, "new_fleets": changes["new_fleets"],
        "gone_fleets": [], "newly_flagged": sum(bool(r["flagged"]) for r in by_id.values()),
        "unflagged": 0, "with_previous_flag": len(by_id)}
    assert sorted(changes["new_fleets"]) == sorted(fleets)
    assert {r["worker_id"] for r in rows("label_conflicts", limit=1000)} == conflicts

    worker = min(members)
    verdict = record_verdict(driver, worker, "confirmed", "ana", note="ring", schema=schema)
    assert (verdict.node_id, verdict.review, verdict.reviewed_by, verdict.note) == (
        worker, "confirmed", "ana", "ring")
    with pytest.raises(InputError, match="worker 'w999' is not in the graph"):
        record_verdict(driver, "w999", "confirmed", schema=schema)
    (evidence,) = rows("account_evidence", worker_id=worker)
    (node,), _, _ = driver.execute_query(
        "MATCH (w:Worker {worker_id: $id}) RETURN w.evidence_summary AS summary, "
        "w.evidence_top_features AS top, w.model_version AS version, w.reviewed_at AS at",
        id=worker)
    assert node["summary"] and node["top"] and node["at"] is not None
    assert evidence.data() == {
        "worker_id": worker, "score": round(by_id[worker]["score"], 4), "flagged": True,
        "fleet_id": fleet_id, "summary": node["summary"], "top_features": node["top"],
        "relations": by_id[worker]["relations"], "neighbours": by_id[worker]["neighbours"],
        "model_version": node["version"], "run_id": run_id, "review": "confirmed",
        "reviewed_by": "ana", "reviewed_at": node["at"]}

    other = sorted(members)[1]
    n = settings.neo4j
    result = CliRunner().invoke(cli, [
        "--config", str(_worker_config(settings)), "--set", f"neo4j.bolt_port={n.bolt_port}",
        "--set", f"neo4j.http_port={n.http_port}", "--set", f"neo4j.password_file={n.password_file}",
        "verdict", other, "false_positive", "--analyst", "bo"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{other}: false_positive by bo at ")
    stored, _, _ = driver.execute_query(
        "MATCH (w:Worker) WHERE w.review IS NOT NULL RETURN w.worker_id AS id, "
        "w.review AS review, w.reviewed_by AS by, w.review_note AS note, "
        "w.reviewed_at IS NOT NULL AS stamped ORDER BY id")
    assert [r.data() for r in stored] == [
        {"id": worker, "review": "confirmed", "by": "ana", "note": "ring", "stamped": True},
        {"id": other, "review": "false_positive", "by": "bo", "note": None, "stamped": True}]


def _worker_config(settings: Settings) -> Path:
    """A config file with the worker schema, beside the run's snapshot cache."""
    import yaml

    path = Path(str(settings.export.cache_dir)).parent / "worker.yaml"
    path.write_text(yaml.safe_dump({"export": WORKER_SCHEMA}))
    return path
