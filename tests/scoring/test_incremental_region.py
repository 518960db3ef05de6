"""The region an incremental run reads, on a hand-built chain in the real Neo4j:
a0 - ip0 - a1 - ip1 - a2 - ip2 - a3 - ip3 - a4 (USED_IP), a4 - a5 (PROMPT_SIMILAR)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.scoring.incremental import BaseRun, changed_region

pytestmark = pytest.mark.neo4j

BASE = BaseRun(run_id="score-base", model_version="1", graph_seq=5,
               started_at=datetime(2024, 1, 1, tzinfo=timezone.utc))


@pytest.fixture(params=["off", "required"])
def region_settings(request: pytest.FixtureRequest, neo4j_settings: Settings) -> Settings:
    """Every region twice: plain Cypher per hop, and the server-side walk."""
    return neo4j_settings.model_copy(update={"neo4j": neo4j_settings.neo4j.model_copy(
        update={"procedures": request.param})})


def _chain(driver: Any) -> None:
    driver.execute_query(
        "UNWIND range(0, 5) AS i CREATE (:Account {account_id: 'a' + i, changed_seq: 1})")
    driver.execute_query("UNWIND range(0, 3) AS i CREATE (:IP {ip_id: 'ip' + i})")
    driver.execute_query(
        "UNWIND range(0, 3) AS i MATCH (a:Account {account_id: 'a' + i}), "
        "(b:Account {account_id: 'a' + (i + 1)}), (ip:IP {ip_id: 'ip' + i}) "
        "CREATE (a)-[:USED_IP {n_events: 1}]->(ip), (b)-[:USED_IP {n_events: 1}]->(ip)")
    driver.execute_query("MATCH (a:Account {account_id: 'a4'}), (b:Account {account_id: 'a5'}) "
                         "CREATE (a)-[:PROMPT_SIMILAR {similarity: 0.9}]->(b)")


def _region_after(driver: Any, settings: Settings, change: str) -> Any:
    """The chain, then ``change`` (Cypher), then the region of a run based on ``BASE``."""
    _chain(driver)
    driver.execute_query(change)
    return changed_region(driver, settings, BASE, reach=2, context_hops=3)


def _keys(driver: Any, ids: Any) -> list[str]:
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE id(n) IN $ids RETURN coalesce(n.account_id, n.ip_id) AS k ORDER BY k",
        ids=[int(i) for i in ids])
    return [r["k"] for r in records]


def test_targets_are_the_reach_of_a_change_and_context_one_hop_more(
        neo4j_driver: Any, region_settings: Settings) -> None:
    # an ingest after the base stamped a0's new edge to ip0, so both ends
    region = _region_after(neo4j_driver, region_settings,
                           "MATCH (n) WHERE n.account_id = 'a0' OR n.ip_id = 'ip0' "
                           "SET n.changed_seq = 5")

    assert _keys(neo4j_driver, region.seeds["account"]) == ["a0"]
    assert _keys(neo4j_driver, region.seeds["ip"]) == ["ip0"]
    # accounts within two hops of a0 or ip0: a0 and a1; a2 is three hops from ip0
    assert _keys(neo4j_driver, region.targets) == ["a0", "a1"]
    # three hops from a0 or a1: up to ip2 (a1 - ip1 - a2 - ip2); a3 is four away
    context = [k for ids in region.context.values() for k in _keys(neo4j_driver, ids)]
    assert sorted(context) == ["a0", "a1", "a2", "ip0", "ip1", "ip2"]
    assert region.n_seeds == 2


def test_a_verdict_since_the_base_is_a_seed_and_old_stamps_are_not(
        neo4j_driver: Any, region_settings: Settings) -> None:
    region = _region_after(neo4j_driver, region_settings,
                           "MATCH (a:Account {account_id: 'a5'}) "
                           "SET a.review = 'confirmed', a.reviewed_at = datetime()")
    assert _keys(neo4j_driver, region.seeds["account"]) == ["a5"]
    # a5 - a4 (similar), a4 - ip3 - a3: a3 is three hops away
    assert _keys(neo4j_driver, region.targets) == ["a4", "a5"]


def test_the_server_walk_and_the_cypher_hops_reach_the_same_nodes(
        neo4j_driver: Any, neo4j_settings: Settings) -> None:
    # a random graph with hubs: 300 accounts, 40 IPs (a few shared by many), similarity
    # edges in both directions, and an IP that nobody used
    import numpy as np

    rng = np.random.default_rng(11)
    neo4j_driver.execute_query(
        "UNWIND range(0, 299) AS i CREATE (:Account {account_id: 'a' + i, changed_seq: 1})")
    neo4j_driver.execute_query("UNWIND range(0, 40) AS i CREATE (:IP {ip_id: 'ip' + i})")
    uses = [{"a": f"a{i}", "ip": f"ip{int(min(rng.zipf(1.6), 40)) - 1}"} for i in range(300)]
    neo4j_driver.execute_query(
        "UNWIND $rows AS r MATCH (a:Account {account_id: r.a}), (ip:IP {ip_id: r.ip}) "
        "CREATE (a)-[:USED_IP {n_events: 1}]->(ip)", rows=uses)
    pairs = [{"a": f"a{i}", "b": f"a{j}"} for i, j in rng.integers(0, 300, size=(120, 2))]
    neo4j_driver.execute_query(
        "UNWIND $rows AS r MATCH (a:Account {account_id: r.a}), (b:Account {account_id: r.b}) "
        "CREATE (a)-[:PROMPT_SIMILAR {similarity: 0.9}]->(b)", rows=pairs)
    neo4j_driver.execute_query(
        "MATCH (n) WHERE n.account_id IN ['a7', 'a150'] OR n.ip_id = 'ip40' "
        "SET n.changed_seq = 5")
    regions = {}
    for mode in ("off", "required"):
        settings = neo4j_settings.model_copy(update={"neo4j": neo4j_settings.neo4j.model_copy(
            update={"procedures": mode})})
        regions[mode] = changed_region(neo4j_driver, settings, BASE, reach=2, context_hops=3)
    off, server = regions["off"], regions["required"]
    assert np.array_equal(off.targets, server.targets)
    assert set(off.context) == set(server.context) >= {"account", "ip"}
    for name in off.context:
        assert np.array_equal(off.context[name], server.context[name])
    # the walk went somewhere: more than the seeds, less than everything
    assert 2 < off.targets.size < 300
    assert off.targets.size < off.context["account"].size
