"""The saved queries, the verdict function and the score bands against a real Neo4j."""

from __future__ import annotations

from typing import Any

import pytest

from sybilgnn.browser import (
    query_by_name,
    record_verdict,
    saved_queries,
)
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.scoring.bands import ScoreBands, apply_score_bands

pytestmark = pytest.mark.neo4j

SCHEMA = GraphSchema.default()


def _rows(driver: Any, name: str, **params: Any) -> list[dict[str, Any]]:
    query = query_by_name(name, SCHEMA)
    with driver.session() as session:
        return [r.data() for r in session.run(query.cypher, {**query.params, **params})]


def test_every_saved_query_answers_its_example_parameters(neo4j_driver: Any,
                                                          scored_graph: Any) -> None:
    neo4j_driver.execute_query(
        "MATCH (a:Account {account_id: 'acct-20'}) "
        "SET a.label_conflict = true, a.label = 0, a.label_source = 'support'")
    answers: dict[str, list[Any]] = {}
    with neo4j_driver.session() as session:
        for query in saved_queries(SCHEMA):
            answers[query.name] = list(session.run(query.cypher, query.params))
    assert {name: len(rows) for name, rows in answers.items()} == {
        "fleets": 2, "fleet_subgraph": 8 + 12 + 8 + 7, "account_evidence": 0,
        "record_verdict": 1, "changes": 1, "label_conflicts": 1}
    assert [(r["fleet_id"], r["size"], r["shared_ips"], r["shared_instruments"])
            for r in answers["fleets"]] == [("F-0002", 5, 1, 2), ("F-0001", 8, 2, 1)]
    # the example account is not in this graph: the verdict query says so and writes nothing
    assert answers["record_verdict"][0].data() == {
        "account_id": "acct-0001", "outcome": "unknown Account", "review": None,
        "reviewed_by": None, "reviewed_at": None}
    assert answers["changes"][0]["run_id"] == "run-2"
    assert [r.data() for r in answers["label_conflicts"]] == [{
        "account_id": "acct-20", "score": 0.12, "label": 0, "label_source": "support",
        "review": None, "reviewed_at": None, "model_version": "3"}]
    assert neo4j_driver.execute_query("MATCH (a:Account) WHERE a.review IS NOT NULL "
                                      "RETURN count(a) AS n").records[0]["n"] == 0


def test_fleets_lists_active_fleets_newest_first(neo4j_driver: Any, scored_graph: Any) -> None:
    rows = _rows(neo4j_driver, "fleets")
    assert [(r["fleet_id"], r["size"]) for r in rows] == [("F-0002", 5), ("F-0001", 8)]
    assert rows[1]["mean_score"] == 0.945
    assert rows[1]["shared_ips"] == 2 and rows[1]["shared_instruments"] == 1
    assert _rows(neo4j_driver, "fleets", min_size=6)[0]["fleet_id"] == "F-0001"


def test_fleet_subgraph_holds_members_shared_nodes_and_prompt_links(
        neo4j_driver: Any, scored_graph: Any) -> None:
    with neo4j_driver.session() as session:
        paths = [r["p"] for r in session.run(query_by_name("fleet_subgraph", SCHEMA).cypher,
                                             fleet_id="F-0001", max_members=200)]
    nodes = {n.element_id: n for p in paths for n in p.nodes}
    rels = {r.element_id: r for p in paths for r in p.relationships}
    keys = sorted(n.get("account_id") or n.get("fleet_id") or n.get("ip_id") or n.get("pm_id")
                  for n in nodes.values())
    assert keys == sorted([f"acct-{i:02d}" for i in range(1, 9)]
                          + ["F-0001", "ip-f1-a", "ip-f1-b", "pm-f1"])
    types: dict[str, int] = {}
    for rel in rels.values():
        types[rel.type] = types.get(rel.type, 0) + 1
    assert types == {"MEMBER_OF": 8, "USED_IP": 12, "PAID_WITH": 8, "PROMPT_SIMILAR": 7}


def test_fleet_subgraph_draws_only_the_top_scored_members(
        neo4j_driver: Any, scored_graph: Any) -> None:
    with neo4j_driver.session() as session:
        paths = [r["p"] for r in session.run(query_by_name("fleet_subgraph", SCHEMA).cypher,
                                             fleet_id="F-0001", max_members=3)]
        top, _, _ = neo4j_driver.execute_query(
            "MATCH (:Fleet {fleet_id: 'F-0001'})<-[:MEMBER_OF]-(a) "
            "RETURN a.account_id AS id ORDER BY a.sybil_score DESC LIMIT 3")
    members = {p.start_node.get("account_id") for p in paths
               if p.relationships and p.relationships[0].type == "MEMBER_OF"}
    assert members == {r["id"] for r in top}


def test_account_evidence(neo4j_driver: Any, scored_graph: Any) -> None:
    (row,) = _rows(neo4j_driver, "account_evidence", account_id="acct-03")
    assert row["score"] == 0.96 and row["flagged"] is True and row["fleet_id"] == "F-0001"
    assert row["summary"] == "acct-03: shares IPs and a card with its fleet"
    assert row["top_features"] == ["f_accounts_per_ip=12.0", "f_prompt_template_share=0.8"]
    assert row["relations"][0] == "USED_IP shared with 7 accounts"
    assert row["neighbours"] == ["acct-01", "acct-02"]
    assert row["review"] is None


def test_changes_since_previous_run(neo4j_driver: Any, scored_graph: Any) -> None:
    (row,) = _rows(neo4j_driver, "changes")
    assert row["run_id"] == "run-2" and row["previous_run_id"] == "run-1"
    assert row["new_fleets"] == ["F-0002"] and row["gone_fleets"] == ["F-0000"]
    assert row["newly_flagged"] == scored_graph.newly_flagged == 6
    assert row["unflagged"] == scored_graph.unflagged == 1
    (first,) = _rows(neo4j_driver, "changes", run_id="run-1")
    assert first["previous_run_id"] is None and first["gone_fleets"] == []


def test_record_verdict_writes_review_fields(neo4j_driver: Any, scored_graph: Any) -> None:
    verdict = record_verdict(neo4j_driver, "acct-03", "confirmed", analyst="ana",
                             note="same card", schema=SCHEMA)
    assert (verdict.review, verdict.reviewed_by, verdict.note) == ("confirmed", "ana", "same card")
    record_verdict(neo4j_driver, "acct-15", "FALSE_POSITIVE", analyst="bo", schema=SCHEMA)
    with neo4j_driver.session() as session:
        rows = session.run(
            "MATCH (a:Account) WHERE a.review IS NOT NULL RETURN a.account_id AS id, "
            "a.review AS review, a.reviewed_by AS by, a.review_note AS note, "
            "a.reviewed_at IS NOT NULL AS stamped ORDER BY id").data()
    assert rows == [
        {"id": "acct-03", "review": "confirmed", "by": "ana", "note": "same card", "stamped": True},
        {"id": "acct-15", "review": "false_positive", "by": "bo", "note": None, "stamped": True},
    ]


def test_record_verdict_refuses_bad_input_and_writes_nothing(neo4j_driver: Any,
                                                             scored_graph: Any) -> None:
    with pytest.raises(InputError, match="expected one of confirmed, false_positive"):
        record_verdict(neo4j_driver, "acct-03", "maybe", schema=SCHEMA)
    with pytest.raises(InputError, match="account 'acct-99' is not in the graph"):
        record_verdict(neo4j_driver, "acct-99", "confirmed", schema=SCHEMA)
    # the Browser path (same Cypher) refuses an invalid verdict with a readable outcome
    (row,) = _rows(neo4j_driver, "record_verdict", account_id="acct-03", verdict="yes")
    assert row["outcome"] == "refused: verdict must be confirmed or false_positive"
    with neo4j_driver.session() as session:
        assert session.run("MATCH (a:Account) WHERE a.review IS NOT NULL "
                           "RETURN count(a) AS n").single()["n"] == 0


def test_score_bands_label_each_scored_account_once(neo4j_driver: Any,
                                                    scored_graph: Any) -> None:
    counts = apply_score_bands(neo4j_driver)
    assert counts == {"ScoreLow": 16, "ScoreMedium": 5, "ScoreHigh": 9}
    # rerun with other limits: labels move, never pile up
    counts = apply_score_bands(neo4j_driver, bands=ScoreBands(medium=0.3, high=0.95),
                               batch_size=7)
    assert counts == {"ScoreLow": 14, "ScoreMedium": 12, "ScoreHigh": 4}
    with neo4j_driver.session() as session:
        multi = session.run(
            "MATCH (a:Account) WHERE size([l IN labels(a) WHERE l STARTS WITH 'Score']) <> 1 "
            "RETURN count(a) AS n").single()["n"]
    assert multi == 0


def test_score_bands_reject_inverted_limits() -> None:
    with pytest.raises(ValueError, match="medium <= high"):
        ScoreBands(medium=0.9, high=0.5)
