"""The delta ingest through sybilgnn's server-side procedures against the Cypher fallback:
the very same graph (change stamps included), and the same graph after a killed run resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.ingest import ingest_directory, loaders, writer
from sybilgnn.simulate import simulate_deliveries
from tests.conftest import wipe_database
from tests.ingest.test_ingest import _counts, _graph_dump
from tests.ingest.world import day1_tables, day2_tables, write_tables

pytestmark = pytest.mark.neo4j


def _with(settings: Settings, procedures: str, batch_size: int | None = None,
          cap: int | None = None) -> Settings:
    ingest = settings.ingest.model_copy(update={"batch_size": batch_size or
                                                settings.ingest.batch_size})
    similarity = settings.similarity.model_copy(update={
        "max_edges_per_account": cap or settings.similarity.max_edges_per_account})
    return settings.model_copy(update={
        "neo4j": settings.neo4j.model_copy(update={"procedures": procedures}), "ingest": ingest,
        "similarity": similarity})


def _deliveries(tmp_path: Path) -> list[Path]:
    """The hand-built days, then a small simulated world and two of its daily deltas."""
    hand = [write_tables(tmp_path / "d1", day1_tables()),
            write_tables(tmp_path / "d2", day2_tables())]
    simulate_deliveries(tmp_path / "sim", accounts=300, scenario="easy", seed=3, days=2,
                        events_scale=0.5)
    return hand + sorted(p for p in (tmp_path / "sim").iterdir() if p.name.startswith("day-"))


def _ingest_all(settings: Settings, driver: Any, deliveries: list[Path]) -> bool:
    used = set()
    for delivery in deliveries:
        used.add(ingest_directory(settings, delivery, driver=driver).procedures)
    assert len(used) == 1
    return used.pop()


def test_procedures_give_the_cypher_graph(neo4j_settings: Settings, neo4j_driver: Any,
                                          tmp_path: Path) -> None:
    deliveries = _deliveries(tmp_path)
    small = 40  # several batches per table, so batch boundaries are crossed
    # a low similarity cap, so that deltas prune edges (and stamp both ends)
    assert _ingest_all(_with(neo4j_settings, "off", small, 3), neo4j_driver,
                       deliveries) is False
    expected_counts, expected = _counts(neo4j_driver), _graph_dump(neo4j_driver)
    wipe_database(neo4j_driver)
    assert _ingest_all(_with(neo4j_settings, "required", small, 3), neo4j_driver,
                       deliveries) is True
    assert _counts(neo4j_driver) == expected_counts
    assert expected_counts["USED_IP"] > 200 and expected_counts["PROMPT_SIMILAR"] > 10, expected_counts
    assert _graph_dump(neo4j_driver) == expected
    # a delivery ingested again changes nothing on this path either
    ingest_directory(_with(neo4j_settings, "required", small, 3), deliveries[-1],
                     driver=neo4j_driver)
    assert _graph_dump(neo4j_driver) == expected


class _Killed(RuntimeError):
    pass


def _kill_in_used_ip(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """The next ingest dies after ``after`` committed USED_IP batches (their markers with
    them), between two transactions, as a killed process leaves the graph."""
    real_batches, real_write = writer.batches, loaders.write_batches

    def dying_batches(rows: Any, size: int) -> Any:
        for index, batch in real_batches(rows, size):
            if index == after:
                raise _Killed("simulated kill")
            yield index, batch

    def write(*args: Any, **kwargs: Any) -> int:
        if str(kwargs.get("marker", "")).endswith(":USED_IP"):
            monkeypatch.setattr(writer, "batches", dying_batches)
        try:
            return real_write(*args, **kwargs)
        finally:
            monkeypatch.setattr(writer, "batches", real_batches)

    monkeypatch.setattr(loaders, "write_batches", write)


def _stamped(driver: Any) -> tuple[int, set[str]]:
    seq = driver.execute_query("MATCH (c:ChangeClock) RETURN c.seq AS s").records[0]["s"]
    return seq, {r["k"] for r in driver.execute_query(
        "MATCH (n) WHERE n.changed_seq = $s RETURN coalesce(n.account_id, n.ip_id, n.pm_id) "
        "AS k", s=seq).records}


@pytest.mark.parametrize("procedures", ["off", "required"])
def test_a_killed_delta_resumes_to_the_same_graph(neo4j_settings: Settings, neo4j_driver: Any,
                                                  tmp_path: Path, procedures: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    deliveries = _deliveries(tmp_path)[:3]  # the hand-built days, then the simulated day 0
    settings = _with(neo4j_settings, procedures, 40)
    _ingest_all(settings, neo4j_driver, deliveries)
    expected = _graph_dump(neo4j_driver, change_stamps=False)
    last, stamped = _stamped(neo4j_driver)
    wipe_database(neo4j_driver)
    _ingest_all(settings, neo4j_driver, deliveries[:-1])

    _kill_in_used_ip(monkeypatch, after=2)
    with pytest.raises(_Killed):
        ingest_directory(settings, deliveries[-1], driver=neo4j_driver)
    assert _counts(neo4j_driver)["IngestBatch"] == 2  # USED_IP batches 0 and 1 committed
    monkeypatch.undo()

    resumed = ingest_directory(settings, deliveries[-1], driver=neo4j_driver)
    assert resumed.procedures is (procedures == "required")
    assert _graph_dump(neo4j_driver, change_stamps=False) == expected
    # the rerun took the next change value, replaced the killed run's entry, stamped the same
    assert _stamped(neo4j_driver) == (last + 1, stamped)
    active = neo4j_driver.execute_query("MATCH (c:ChangeClock) RETURN c.active AS a").records
    assert active[0]["a"] == []
