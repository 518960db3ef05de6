"""The graph's change counter against the real Neo4j: what a scoring run may not have seen."""

from __future__ import annotations

from typing import Any

import pytest

from sybilgnn.ingest.changes import (finish_change, first_unseen_seq, next_change_seq,
                                     stamp_changes)

pytestmark = pytest.mark.neo4j


def _first_unseen(driver: Any) -> int:
    with driver.session() as session:
        return session.execute_read(first_unseen_seq)


def _finish(driver: Any, seq: int) -> None:
    with driver.session() as session:
        session.execute_write(finish_change, seq)


def test_in_flight_ingests_hold_back_what_a_run_has_seen(neo4j_driver: Any) -> None:
    assert _first_unseen(neo4j_driver) == 1  # before any ingest
    first = next_change_seq(neo4j_driver, "neo4j", "delivery-a")
    second = next_change_seq(neo4j_driver, "neo4j", "delivery-b")
    assert (first, second) == (1, 2)
    assert _first_unseen(neo4j_driver) == 1  # both in flight: the oldest may be half-seen
    _finish(neo4j_driver, first)
    assert _first_unseen(neo4j_driver) == 2
    _finish(neo4j_driver, second)
    assert _first_unseen(neo4j_driver) == 3  # nothing in flight: the next value


def test_a_rerun_of_a_killed_delivery_replaces_its_entry(neo4j_driver: Any) -> None:
    killed = next_change_seq(neo4j_driver, "neo4j", "delivery-a")  # never finished
    other = next_change_seq(neo4j_driver, "neo4j", "delivery-b")
    _finish(neo4j_driver, other)
    assert _first_unseen(neo4j_driver) == killed
    rerun = next_change_seq(neo4j_driver, "neo4j", "delivery-a")
    assert rerun == 3 and _first_unseen(neo4j_driver) == 3
    _finish(neo4j_driver, rerun)
    assert _first_unseen(neo4j_driver) == 4


def test_stamps_name_the_ingest_that_wrote_a_node(neo4j_driver: Any) -> None:
    neo4j_driver.execute_query("UNWIND ['a1', 'a2', 'a3'] AS id CREATE (:Account {account_id: id})")
    neo4j_driver.execute_query("CREATE (:IP {ip_id: 'i1'})")
    stamped = stamp_changes(neo4j_driver, "neo4j", 7,
                            {"Account": ["a1", "a3", "a1"], "IP": ["i1"]}, batch_size=1)
    assert stamped == 3
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (n) RETURN coalesce(n.account_id, n.ip_id) AS id, n.changed_seq AS seq "
        "ORDER BY id")
    assert [(r["id"], r["seq"]) for r in records] == [
        ("a1", 7), ("a2", None), ("a3", 7), ("i1", 7)]
