"""Fleet grouping (exact memberships) and fleet id stability across runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sybilgnn.config import Settings
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.scoring import (
    assign_fleet_ids,
    build_fleets,
    find_fleet_components,
    fleet_id_for,
    fleet_links,
    score_snapshot,
)
from tests.scoring.world import ACCOUNTS, FLAGGED_RUN1, build_snapshot, scores_for, tiny_model


def _members(flagged: set[str], *, max_shared: int = 10, min_size: int = 3) -> list[list[str]]:
    mask = np.array([a in flagged for a in ACCOUNTS])
    comps = find_fleet_components(mask, fleet_links(build_snapshot(), GraphSchema.default()),
                                  min_size=min_size, max_shared_accounts=max_shared)
    return sorted(sorted(ACCOUNTS[r] for r in c.rows) for c in comps)


def test_components_link_shared_ips_instruments_and_prompts() -> None:
    assert _members(FLAGGED_RUN1) == [["a00", "a01", "a02", "a03"], ["a10", "a11", "a12"]]
    # min size 2 admits the pair on ip2; a05 stays alone.
    assert _members(FLAGGED_RUN1, min_size=2) == [
        ["a00", "a01", "a02", "a03"], ["a10", "a11", "a12"], ["a15", "a16"]]


def test_hub_ip_links_nobody_unless_under_the_cap() -> None:
    # ip5 is used by all 20 accounts: with a cap of 20 it glues every flagged account together.
    assert _members(FLAGGED_RUN1, max_shared=20) == [sorted(FLAGGED_RUN1)]
    assert _members({"a05", "a06", "a07"}) == []


def test_shared_counts_and_mean_score() -> None:
    snapshot = build_snapshot()
    mask = np.array([a in FLAGGED_RUN1 for a in ACCOUNTS])
    scores = scores_for(FLAGGED_RUN1)
    fleets = build_fleets(mask, scores, snapshot.id_maps["account"],
                          fleet_links(snapshot, GraphSchema.default()), {},
                          min_size=3, max_shared_accounts=10, stability_jaccard=0.5)
    by_members = {f.members: f for f in fleets}
    a = by_members[("a00", "a01", "a02", "a03")]
    b = by_members[("a10", "a11", "a12")]
    assert a.shared == {"n_shared_ips": 2, "n_shared_instruments": 1}  # ip0, ip1; pm0
    assert b.shared == {"n_shared_ips": 0, "n_shared_instruments": 0}
    assert a.mean_score == pytest.approx(np.mean(scores[:4]))
    assert a.fleet_id == fleet_id_for(["a03", "a02", "a01", "a00"])
    assert a.fleet_id.startswith("fleet-") and len(a.fleet_id) == 14


def test_assign_ids_greedy_by_best_overlap() -> None:
    previous = {"fleet-old1": frozenset({"a", "b", "c", "d"}), "fleet-old2": frozenset({"x", "y"})}
    comps = [("a", "b", "c"), ("a2", "b2", "c", "d"), ("x", "y", "z")]
    # comp0 J=3/4 beats comp1 J=1/3 for old1 (and 1/3 < 0.5 anyway); comp2 J=2/3 keeps old2.
    ids = assign_fleet_ids(comps, previous, stability_jaccard=0.5)
    assert ids == [("fleet-old1", "fleet-old1"), (fleet_id_for(comps[1]), None),
                   ("fleet-old2", "fleet-old2")]
    # Two components competing for one previous fleet: only the better overlap keeps the id.
    ids = assign_fleet_ids([("a", "b"), ("a", "b", "c", "d", "e")],
                           {"f1": frozenset({"a", "b", "c", "d"})}, stability_jaccard=0.5)
    assert ids[1] == ("f1", "f1") and ids[0] == (fleet_id_for(("a", "b")), None)


def _fleet_state(driver: Any) -> dict[str, tuple[bool, list[str], str, str]]:
    records, _, _ = driver.execute_query(
        "MATCH (f:Fleet) OPTIONAL MATCH (a:Account)-[:MEMBER_OF]->(f) "
        "RETURN f.fleet_id AS id, f.active AS active, f.created_run_id AS created, "
        "f.updated_run_id AS updated, f.size AS size, collect(a.account_id) AS members")
    for r in records:
        if r["active"]:
            assert r["size"] == len(r["members"])
    return {r["id"]: (r["active"], sorted(r["members"]), r["created"], r["updated"])
            for r in records}


@pytest.mark.neo4j
def test_fleet_ids_stable_across_runs(world: Any, scoring_settings: Settings) -> None:
    snapshot = build_snapshot()
    model = tiny_model(snapshot)

    def run(flagged: set[str]) -> str:
        return score_snapshot(world, scoring_settings, snapshot, scores_for(flagged),
                              threshold=0.5, model_version=1, model=model).run_id

    first = run(FLAGGED_RUN1)
    fleet_a = fleet_id_for(["a00", "a01", "a02", "a03"])
    fleet_b = fleet_id_for(["a10", "a11", "a12"])
    assert _fleet_state(world) == {
        fleet_a: (True, ["a00", "a01", "a02", "a03"], first, first),
        fleet_b: (True, ["a10", "a11", "a12"], first, first),
    }
    # Small change (a04 joins A: J = 4/5) keeps A's id; B moves along the prompt chain to
    # a12..a14 (J = 1/5): a new fleet, and B goes inactive without members.
    second = run((FLAGGED_RUN1 - {"a10", "a11"}) | {"a04", "a13", "a14"})
    fleet_c = fleet_id_for(["a12", "a13", "a14"])
    assert _fleet_state(world) == {
        fleet_a: (True, ["a00", "a01", "a02", "a03", "a04"], first, second),
        fleet_b: (False, [], first, first),
        fleet_c: (True, ["a12", "a13", "a14"], second, second),
    }
    records, _, _ = world.execute_query(
        "MATCH (f:Fleet {fleet_id: $id}) RETURN f.deactivated_run_id AS gone, "
        "f.first_seen < f.last_seen AS aged", id=fleet_b)
    assert records[0]["gone"] == second
    records, _, _ = world.execute_query(
        "MATCH (f:Fleet {fleet_id: $id}) RETURN f.first_seen < f.last_seen AS aged", id=fleet_a)
    assert records[0]["aged"] is True


@pytest.mark.neo4j
def test_known_legitimate_accounts_contradict_their_label_instead_of_flagging(
        world: Any, scoring_settings: Settings) -> None:
    import torch

    snapshot = build_snapshot()
    labels = torch.full((len(ACCOUNTS),), -1, dtype=torch.long)
    labels[ACCOUNTS.index("a03")] = 0   # labelled (or reviewed) legitimate
    labels[ACCOUNTS.index("a00")] = 1   # a fake label changes nothing
    snapshot.data["account"].y = labels
    summary = score_snapshot(world, scoring_settings, snapshot, scores_for(FLAGGED_RUN1),
                             threshold=0.5, model_version=1)
    assert summary.n_label_conflicts == 1
    assert summary.n_flagged == len(FLAGGED_RUN1) - 1
    records, _, _ = world.execute_query(
        "MATCH (a:Account) WHERE a.account_id IN ['a00', 'a03'] "
        "OPTIONAL MATCH (a)-[:MEMBER_OF]->(f:Fleet) RETURN a.account_id AS id, "
        "a.sybil_flag AS flag, a:Flagged AS labelled, a.label_conflict AS conflict, "
        "f.fleet_id AS fleet ORDER BY id")
    assert [(r["id"], r["flag"], r["labelled"], r["conflict"], r["fleet"] is not None)
            for r in records] == [("a00", True, True, None, True),
                                  ("a03", False, False, True, False)]
    run, _, _ = world.execute_query("MATCH (r:ScoringRun {run_id: $id}) "
                                    "RETURN r.n_label_conflicts AS n", id=summary.run_id)
    assert run[0]["n"] == 1
    # The next run without the label clears the mark and flags the account.
    del snapshot.data["account"].y
    again = score_snapshot(world, scoring_settings, snapshot, scores_for(FLAGGED_RUN1),
                           threshold=0.5, model_version=1)
    assert again.n_label_conflicts == 0 and again.n_flagged == len(FLAGGED_RUN1)
    records, _, _ = world.execute_query(
        "MATCH (a:Account {account_id: 'a03'}) RETURN a.sybil_flag AS flag, "
        "a.label_conflict AS conflict")
    assert (records[0]["flag"], records[0]["conflict"]) == (True, None)
