"""The read paths behind the fast export: chunking, parallel sessions, gap padding, errors.

The columnar reads read columns without padding first and pad only those that come back
short; targets are checked against the fixed node sets on the client, with the server's
label check kept only where the type also ends at other labels. These tests pin that every
path gives the same snapshot and the same counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sybilgnn.config import Settings
from sybilgnn.errors import InputError, SybilgnnError
from sybilgnn.export import export_snapshot
from sybilgnn.export import read as export_read
from sybilgnn.export.fetch import fetch_node_ids
from tests.export.small_graph import ACCOUNTS, USED_IP, small_settings

pytestmark = pytest.mark.neo4j


@pytest.fixture(params=["off", "required"])
def procedures(request: pytest.FixtureRequest) -> str:
    """Every read path twice: plain Cypher, and sybilgnn's server-side procedures."""
    return str(request.param)


def _settings(base: Settings, cache_dir: Path, procedures: str) -> Settings:
    settings = small_settings(base, cache_dir)
    return settings.model_copy(update={"neo4j": settings.neo4j.model_copy(
        update={"procedures": procedures})})


def _with_chunk(settings: Settings, chunk_size: int) -> Settings:
    return settings.model_copy(update={"export": settings.export.model_copy(
        update={"chunk_size": chunk_size})})


def test_chunking_and_workers_give_the_same_snapshot(small_graph: Any, neo4j_settings: Settings,
                                                     procedures: str, tmp_path: Path) -> None:
    base = _settings(neo4j_settings, tmp_path, procedures)
    reference = export_snapshot(_with_chunk(base, 1000), driver=small_graph, use_cache=False,
                                workers=1)
    for chunk_size, workers in ((1, 1), (5, 2), (2, 3), (1000, 2)):
        snap = export_snapshot(_with_chunk(base, chunk_size), driver=small_graph,
                               use_cache=False, workers=workers)
        assert snap.content_hash == reference.content_hash, (chunk_size, workers)
        assert snap.meta["late_edges_dropped"] == {"used_ip": 0, "paid_with": 0,
                                                   "prompt_similar": 0}
        assert snap.meta["vanished_nodes"] == {"account": 0, "ip": 0, "payment": 0}
        assert snap.meta["point_in_time"] is True
    if procedures == "required":  # the same graph through both paths: the very same snapshot
        cypher = export_snapshot(_with_chunk(base.model_copy(update={
            "neo4j": base.neo4j.model_copy(update={"procedures": "off"})}), 3),
            driver=small_graph, use_cache=False)
        assert cypher.content_hash == reference.content_hash
    with pytest.raises(InputError, match="workers"):
        export_snapshot(base, driver=small_graph, workers=0)


def test_a_gap_in_a_later_chunk_is_padded_not_shifted(small_graph: Any,
                                                      neo4j_settings: Settings,
                                                      procedures: str, tmp_path: Path) -> None:
    """a09's f_a goes missing: the first chunks read f_a dense, the one with a09 pads it."""
    small_graph.execute_query("MATCH (a:Account {account_id: 'a09'}) REMOVE a.f_a")
    snap = export_snapshot(_settings(neo4j_settings, tmp_path, procedures), driver=small_graph,
                           use_cache=False, workers=1)
    f_a = np.array([a["f_a"] for a in ACCOUNTS if a["id"] != "a09"])
    x = snap.data["account"].x.numpy()
    rows = {k: i for i, k in enumerate(snap.id_maps["account"])}
    assert x[rows["a09"], 0] == 0.0  # missing: the mean
    for acc in ACCOUNTS:
        if acc["id"] != "a09":
            assert x[rows[acc["id"]], 0] == pytest.approx((acc["f_a"] - f_a.mean()) / f_a.std(),
                                                          abs=1e-6)


def test_edges_to_other_labels_are_not_counted_late(small_graph: Any, neo4j_settings: Settings,
                                                    procedures: str, tmp_path: Path) -> None:
    """A USED_IP to a card is outside the schema: left out, and not reported as late."""
    small_graph.execute_query(
        "MATCH (a:Account {account_id: 'a01'}), (p:PaymentInstrument {pm_id: 'pm1'}) "
        "CREATE (a)-[:USED_IP {n_events: 1}]->(p)")
    snap = export_snapshot(_settings(neo4j_settings, tmp_path, procedures), driver=small_graph,
                           use_cache=False)
    assert snap.meta["relationships_exported"]["used_ip"] == len(USED_IP)
    assert snap.meta["late_edges_dropped"]["used_ip"] == 0


def test_nodes_outside_the_fixed_sets_drop_their_edges(small_graph: Any,
                                                       neo4j_settings: Settings,
                                                       procedures: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """As if ip1 were created after the node sets were fixed, and a fixed id then deleted."""
    records, _, _ = small_graph.execute_query(
        "MATCH (i:IP {ip_id: 'ip1'}) RETURN id(i) AS ip1")
    ip1 = records[0]["ip1"]

    def fake_ids(tx: Any, label: str) -> np.ndarray:
        ids = fetch_node_ids(tx, label)
        if label == "IP":
            return np.sort(np.append(ids[ids != ip1], ids.max() + 10_000))
        return ids

    monkeypatch.setattr(export_read, "fetch_node_ids", fake_ids)
    snap = export_snapshot(_settings(neo4j_settings, tmp_path, procedures), driver=small_graph,
                           use_cache=False)
    assert list(snap.id_maps["ip"]) == ["ip2", "ip3"]
    assert snap.meta["vanished_nodes"]["ip"] == 1
    to_ip1 = sum(1 for _, ip, _ in USED_IP if ip == "ip1")
    assert snap.meta["late_edges_dropped"]["used_ip"] == to_ip1
    assert snap.meta["relationships_exported"]["used_ip"] == len(USED_IP) - to_ip1


@pytest.mark.parametrize("write, message", [
    ("MATCH (a:Account {account_id: 'a11'}) SET a.f_b = 'many'",
     "property 'f_b' of :Account must be numeric, found 'many'"),
    ("MATCH (a:Account {account_id: 'a12'}) REMOVE a.account_id",
     "1 :Account nodes have no 'account_id'"),
    ("MATCH ()-[r:USED_IP]->(:IP {ip_id: 'ip3'}) SET r.n_events = 'x'",
     "property 'n_events' of :USED_IP must be numeric"),
])
def test_bad_values_are_clear_errors(small_graph: Any, neo4j_settings: Settings, tmp_path: Path,
                                     procedures: str, write: str, message: str) -> None:
    small_graph.execute_query(write)
    with pytest.raises(InputError, match=message):
        export_snapshot(_settings(neo4j_settings, tmp_path, procedures), driver=small_graph,
                        use_cache=False)


def test_required_procedures_fail_clearly_when_the_server_lacks_them(
        small_graph: Any, neo4j_settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sybilgnn.neo4j import plugin

    monkeypatch.setattr(plugin, "server_procedures_version", lambda session: None)
    with pytest.raises(SybilgnnError, match="neo4j.procedures is 'required' but the server "
                                            "has none of the sybilgnn procedures"):
        export_snapshot(_settings(neo4j_settings, tmp_path, "required"), driver=small_graph,
                        use_cache=False)
    auto = export_snapshot(_settings(neo4j_settings, tmp_path, "auto"), driver=small_graph,
                           use_cache=False)  # auto falls back to Cypher
    assert auto.meta["relationships_exported"]["used_ip"] == len(USED_IP)


def test_the_managed_server_has_the_procedures(small_graph: Any) -> None:
    from sybilgnn.neo4j.plugin import API_VERSION, server_procedures_version

    with small_graph.session() as session:
        assert server_procedures_version(session) == API_VERSION


def test_packed_texts_keep_unicode_and_refuse_nul(small_graph: Any, neo4j_settings: Settings,
                                                  tmp_path: Path) -> None:
    """The procedures pack texts as NUL-terminated UTF-8: non-ASCII survives, NUL is refused."""
    small_graph.execute_query("MATCH (a:Account {account_id: 'a03'}) SET a.country = 'Ünï😀'")
    through = {mode: export_snapshot(_settings(neo4j_settings, tmp_path, mode),
                                     driver=small_graph, use_cache=False)
               for mode in ("off", "required")}
    assert through["off"].content_hash == through["required"].content_hash
    small_graph.execute_query("MATCH (a:Account {account_id: 'a03'}) SET a.plan = $text",
                              text="a\0b")
    with pytest.raises(InputError, match="property 'plan' of :Account must be a string"):
        export_snapshot(_settings(neo4j_settings, tmp_path, "required"), driver=small_graph,
                        use_cache=False)
