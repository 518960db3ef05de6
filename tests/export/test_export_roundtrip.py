"""Round trip of the small known graph: exact edges, features, labels, masks and id maps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sybilgnn.config import NodeSchema, RelationshipSchema, Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.export import export_snapshot
from sybilgnn.neo4j.cypher import SchemaError
from tests.export.small_graph import (ACCOUNTS, DAY, PAID_WITH, PROMPT_SIMILAR, T0, USED_IP,
                                      small_settings, write_verdicts)

pytestmark = pytest.mark.neo4j


def edge_pairs(snapshot: Snapshot, key: tuple[str, str, str]) -> dict[tuple[str, str], float]:
    src_type, _, dst_type = key
    store = snapshot.data[key]
    src, dst = store.edge_index.numpy()
    weights = store.edge_weight.numpy()
    return {(str(snapshot.id_maps[src_type][s]), str(snapshot.id_maps[dst_type][d])): float(w)
            for s, d, w in zip(src, dst, weights)}


def rows_of(snapshot: Snapshot, mask: str) -> list[str]:
    flags = snapshot.data["account"][mask].numpy()
    return [str(k) for k in snapshot.id_maps["account"][flags]]


@pytest.fixture()
def snapshot(small_graph: Any, neo4j_settings: Settings, tmp_path: Path) -> Snapshot:
    return export_snapshot(small_settings(neo4j_settings, tmp_path / "cache"), driver=small_graph)


def test_id_maps_and_edges_are_exact(snapshot: Snapshot) -> None:
    assert list(snapshot.id_maps["account"]) == [a["id"] for a in ACCOUNTS]
    assert list(snapshot.id_maps["ip"]) == ["ip1", "ip2", "ip3"]
    assert list(snapshot.id_maps["payment"]) == ["pm1", "pm2"]
    used = {(a, i): (1.0 if n is None else math.log1p(n)) for a, i, n in USED_IP}
    assert edge_pairs(snapshot, ("account", "used_ip", "ip")) == pytest.approx(used)
    assert edge_pairs(snapshot, ("ip", "rev_used_ip", "account")) == pytest.approx(
        {(i, a): w for (a, i), w in used.items()})
    paid = {(a, p): math.log1p(n) for a, p, n in PAID_WITH}
    assert edge_pairs(snapshot, ("account", "paid_with", "payment")) == pytest.approx(paid)
    assert edge_pairs(snapshot, ("payment", "rev_paid_with", "account")) == pytest.approx(
        {(p, a): w for (a, p), w in paid.items()})
    similar = {(a, b): s for a, b, s in PROMPT_SIMILAR} | {(b, a): s for a, b, s in PROMPT_SIMILAR}
    assert edge_pairs(snapshot, ("account", "prompt_similar", "account")) == pytest.approx(similar)
    assert set(snapshot.data.edge_types) == {
        ("account", "used_ip", "ip"), ("ip", "rev_used_ip", "account"),
        ("account", "paid_with", "payment"), ("payment", "rev_paid_with", "account"),
        ("account", "prompt_similar", "account")}
    assert snapshot.meta["relationships_exported"] == {"used_ip": 6, "paid_with": 3,
                                                       "prompt_similar": 3}
    assert snapshot.meta["point_in_time"] is True


def test_features_and_normalisation_stats(snapshot: Snapshot) -> None:
    assert snapshot.feature_names["account"] == [
        "f_a", "f_b", "country=US", "country=DE", "country=<other>",
        "plan=free", "plan=pro", "plan=api", "plan=team", "plan=<other>"]
    f_a = np.array([a["f_a"] for a in ACCOUNTS])
    f_b = np.array([a["f_b"] for a in ACCOUNTS if a["f_b"] is not None])
    stats = snapshot.feature_stats["account"]
    assert stats["mean"][:2] == pytest.approx([f_a.mean(), f_b.mean()])
    assert stats["std"][:2] == pytest.approx([f_a.std(), f_b.std()])
    assert stats["mean"][2:] == [0.0] * 8 and stats["std"][2:] == [1.0] * 8
    x = snapshot.data["account"].x.numpy()
    assert x.dtype == np.float32 and x.shape == (12, 10)
    assert x[:, 0] == pytest.approx((f_a - f_a.mean()) / f_a.std(), abs=1e-6)
    assert x[1, 1] == 0.0  # a02 has no f_b: imputed with the mean
    assert x[2, 1] == pytest.approx((30.0 - f_b.mean()) / f_b.std(), abs=1e-6)
    country = {"US": [1, 0, 0], "DE": [0, 1, 0], "FR": [0, 0, 1], None: [0, 0, 1]}
    assert x[:, 2:5].tolist() == [country[a["country"]] for a in ACCOUNTS]
    assert snapshot.feature_names["ip"] == ["is_datacenter", "asn=100", "asn=200", "asn=<other>"]
    assert snapshot.data["ip"].x[:, 1:].tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert snapshot.feature_stats["ip"]["mean"][0] == pytest.approx(2 / 3)
    assert snapshot.feature_names["payment"] == [
        "is_prepaid", "issuer_country=GB", "issuer_country=US", "issuer_country=<other>"]


def test_labels_masks_and_groups(snapshot: Snapshot) -> None:
    account = snapshot.data["account"]
    assert account.y.tolist() == [-1 if a["label"] is None else a["label"] for a in ACCOUNTS]
    times = account.label_time.numpy()
    for row, acc in enumerate(ACCOUNTS):
        if acc["day"] is None:
            assert math.isnan(times[row])
        else:
            assert times[row] == T0 + acc["day"] * DAY
    # c2 (2 labelled) is the lower median of {c2: 2, c1: 3}: held out whole, and scored
    # together with the test slice's negatives (a08, a10).
    assert rows_of(snapshot, "holdout_mask") == ["a07", "a08", "a09", "a10"]
    # pool days 1,2,3,4,5,6,8,10: quantile 0.6 -> 5.2, quantile 0.8 -> 7.2
    assert rows_of(snapshot, "train_mask") == ["a01", "a02", "a03", "a04", "a05"]
    assert rows_of(snapshot, "val_mask") == ["a06"]
    assert rows_of(snapshot, "test_mask") == ["a08", "a10"]
    assert account.group_names == ["c1", "c2"]
    assert account.group.tolist() == [-1, 0, 0, -1, 0, -1, 1, -1, 1, -1, -1, -1]
    assert account.fleet_names == ["c1-f1", "c1-f2", "c2-f1"]
    assert account.fleet.tolist() == [-1, 0, 0, -1, 1, -1, 2, -1, 2, -1, -1, -1]
    assert snapshot.meta["split"]["holdout_group"] == "c2"
    assert snapshot.meta["split"]["train_cutoff"] == pytest.approx(T0 + 5.2 * DAY)


def test_save_load_round_trip(snapshot: Snapshot, tmp_path: Path) -> None:
    loaded = Snapshot.load(snapshot.save(tmp_path / "snap"))
    assert loaded.content_hash == snapshot.content_hash
    assert list(loaded.id_maps["account"]) == list(snapshot.id_maps["account"])
    for key in snapshot.data.edge_types:
        assert loaded.data[key].edge_index.tolist() == snapshot.data[key].edge_index.tolist()
    assert loaded.data["account"].group_names == ["c1", "c2"]
    assert loaded.data["account"].x.tolist() == snapshot.data["account"].x.tolist()
    assert sorted(loaded.neo4j_ids) == ["account", "ip", "payment"]
    for name, ids in snapshot.neo4j_ids.items():  # the write-back's hints, row by row
        assert ids.shape == (len(snapshot.id_maps[name]),)
        assert loaded.neo4j_ids[name].tolist() == ids.tolist()


def test_verdicts_override_platform_labels(small_graph: Any, neo4j_settings: Settings,
                                           tmp_path: Path) -> None:
    write_verdicts(small_graph)
    snap = export_snapshot(small_settings(neo4j_settings, tmp_path), driver=small_graph)
    account = snap.data["account"]
    row = {k: i for i, k in enumerate(snap.id_maps["account"])}
    assert account.y[row["a04"]] == 1 and account.y[row["a09"]] == 0 and account.y[row["a11"]] == 1
    assert account.label_time[row["a04"]].item() == T0 + 11 * DAY
    assert account.label_from_review.nonzero().flatten().tolist() == [row["a04"], row["a09"],
                                                                      row["a11"]]
    counts = snap.meta["labels"]
    assert (counts["verdict_confirmed"], counts["verdict_false_positive"],
            counts["verdict_changed_label"]) == (2, 1, 3)
    assert counts["positive"] == 6 and counts["negative"] == 5
    # a04's verdict on day 11 is the latest label time of the pool: it moves into test.
    assert "a04" in rows_of(snap, "test_mask") and "a04" not in rows_of(snap, "train_mask")


def test_a_prevalence_audit_measures_and_is_never_trained_on(
        small_graph: Any, neo4j_settings: Settings, tmp_path: Path) -> None:
    # a10 (labelled legitimate on day 10) and a12 (no label yet) come from the audit
    small_graph.execute_query(
        "MATCH (a:Account) WHERE a.account_id IN ['a10', 'a12'] "
        "SET a.label_source = 'audit', a.label = CASE a.account_id WHEN 'a12' THEN 1 ELSE 0 END,"
        " a.label_at = datetime({epochSeconds: toInteger($t)})", t=T0 + 10 * DAY)
    snap = export_snapshot(small_settings(neo4j_settings, tmp_path), driver=small_graph)
    account = snap.data["account"]
    row = {k: i for i, k in enumerate(snap.id_maps["account"])}
    assert account.audit_y[row["a10"]] == 0 and account.audit_y[row["a12"]] == 1
    assert int((account.audit_y >= 0).sum()) == 2
    assert account.y[row["a10"]] == -1 and account.y[row["a12"]] == -1
    for mask in ("train_mask", "val_mask", "test_mask", "holdout_mask"):
        assert "a10" not in rows_of(snap, mask) and "a12" not in rows_of(snap, mask)
    counts = snap.meta["labels"]
    assert (counts["audited"], counts["audited_positive"]) == (2, 1)
    # with no audit source configured they are ordinary labels again
    plain_settings = small_settings(neo4j_settings, tmp_path / "plain")
    plain_settings = plain_settings.model_copy(update={"export": plain_settings.export.model_copy(
        update={"labels": plain_settings.export.labels.model_copy(
            update={"audit_source": None})})})
    plain = export_snapshot(plain_settings, driver=small_graph)
    assert plain.data["account"].y[row["a10"]] == 0 and plain.data["account"].y[row["a12"]] == 1
    assert int((plain.data["account"].audit_y >= 0).sum()) == 0


def test_explicit_holdout_value_and_cutoffs(small_graph: Any, neo4j_settings: Settings,
                                            tmp_path: Path) -> None:
    from datetime import datetime, timezone
    settings = small_settings(
        neo4j_settings, tmp_path, holdout_value="c1",
        train_cutoff=datetime.fromtimestamp(T0 + 4.5 * DAY, tz=timezone.utc),
        val_cutoff=datetime.fromtimestamp(T0 + 7.5 * DAY, tz=timezone.utc))
    snap = export_snapshot(settings, driver=small_graph)
    assert rows_of(snap, "holdout_mask") == ["a02", "a03", "a05", "a08", "a10"]
    assert rows_of(snap, "train_mask") == ["a01", "a04"]
    assert rows_of(snap, "val_mask") == ["a06", "a07"]
    assert rows_of(snap, "test_mask") == ["a08", "a09", "a10"]


def test_no_test_label_leaks_into_train(small_graph: Any, neo4j_settings: Settings,
                                        tmp_path: Path) -> None:
    write_verdicts(small_graph)
    snap = export_snapshot(small_settings(neo4j_settings, tmp_path), driver=small_graph)
    account = snap.data["account"]
    times = account.label_time.numpy()
    train, val, test = (account[m].numpy() for m in ("train_mask", "val_mask", "test_mask"))
    holdout = account.holdout_mask.numpy()
    assert train.any() and test.any()
    assert times[train].max() < times[val].min() <= times[val].max() < times[test].min()
    held = account.group.numpy() == account.group_names.index(snap.meta["split"]["holdout_group"])
    assert not (held & (train | val | test)).any()
    negatives = account.y.numpy() == 0
    assert (holdout == ((held & (account.y.numpy() >= 0)) | (test & negatives))).all()


@pytest.mark.parametrize("change, message", [
    ({"nodes": {"label": "Acount"}}, "label 'Acount' is not in the graph"),
    ({"nodes": {"features": ["f_a", "f_missing"]}}, "property 'f_missing'"),
    ({"rel": RelationshipSchema(type="USES_IP", source="account", target="ip")},
     "relationship type 'USES_IP' is not in the graph"),
    ({"rel": RelationshipSchema(type="USED_IP", source="account", target="ip",
                                weight="n_event")}, "property 'n_event'"),
    ({"nodes": {"label": "Account`) DETACH DELETE (x"}}, "not a plain identifier"),
])
def test_schema_errors_name_the_problem(small_graph: Any, neo4j_settings: Settings,
                                        tmp_path: Path, change: dict[str, Any],
                                        message: str) -> None:
    settings = small_settings(neo4j_settings, tmp_path)
    export = settings.export
    if "nodes" in change:
        base = export.nodes["account"].model_dump()
        nodes = {**export.nodes, "account": NodeSchema(**{**base, **change["nodes"]})}
        export = export.model_copy(update={"nodes": nodes})
    else:
        export = export.model_copy(update={"relationships": {"used_ip": change["rel"]}})
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_snapshot(settings.model_copy(update={"export": export}), driver=small_graph)
    records, _, _ = small_graph.execute_query("MATCH (n) RETURN count(n) AS c")
    assert records[0]["c"] == 17


def test_other_schema_exports_without_code_changes(neo4j_driver: Any, neo4j_settings: Settings,
                                                   tmp_path: Path) -> None:
    neo4j_driver.execute_query(
        "UNWIND $rows AS row CREATE (u:User {uid: row[0], score: row[1]})"
        "-[:OWNS {n: row[2]}]->(:Device {did: row[3]})",
        rows=[["u1", 1.0, 3, "d1"], ["u2", 3.0, 0, "d2"]])
    export = neo4j_settings.export.model_copy(update={
        "nodes": {"user": NodeSchema(label="User", key="uid", features=["score"]),
                  "device": NodeSchema(label="Device", key="did")},
        "relationships": {"owns": RelationshipSchema(type="OWNS", source="user",
                                                     target="device", weight="n",
                                                     transform="log1p")},
        "labels": neo4j_settings.export.labels.model_copy(update={"node_type": "user"}),
        "cache_dir": tmp_path})
    settings = neo4j_settings.model_copy(update={"export": export})
    snap = export_snapshot(settings, driver=neo4j_driver)
    assert edge_pairs(snap, ("user", "owns", "device")) == pytest.approx(
        {("u1", "d1"): math.log1p(3), ("u2", "d2"): 0.0})
    assert snap.data["user"].x[:, 0].tolist() == [-1.0, 1.0]
    assert snap.data["user"].y.tolist() == [-1, -1]
    assert snap.feature_names["device"] == ["__constant__"]
