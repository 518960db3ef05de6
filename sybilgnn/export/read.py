"""Every read of one export: node sets fixed in one transaction, then chunks in parallel.

Nearly all of an export's time is the server's: Cypher's slotted runtime (Community
Edition) runs a query on one core, while the client only decodes flat lists. The chunk
queries (``sybilgnn.export.fetch``) are therefore spread over ``workers`` read sessions,
largest first, so the server keeps several cores busy; on the 2-core dev box two sessions
read about 1.5x faster than one when the box has a core to spare (see
``benchmarks/README.md``).

Consistency is the same as with a single transaction, because Neo4j reads at read-committed
level either way: one long transaction sees each write once it commits, just as separate
transactions do. The guarantees come from the construction instead: node sets are fixed
first (one small transaction), every chunk returns the ids it found, and edges are mapped
to rows only after all node chunks are read, dropping (and counting) any edge whose endpoint
is not in the node set of the snapshot. Each chunk is its own transaction, retried whole on
a transient error. ``read_graph`` also returns every session's last bookmark, so the caller
can tell whether anything committed during the export.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import neo4j
import numpy as np

from sybilgnn.config import Settings
from sybilgnn.export.fetch import (EdgeColumns, EdgeReader, EdgeSpec, IdIndex, NodeColumns,
                                   NodeReader, chunks, count_ending_at, count_graph,
                                   fetch_node_ids)
from sybilgnn.export.schema import ResolvedSchema, resolve_schema
from sybilgnn.neo4j.plugin import use_procedures

__all__ = ["RawGraph", "read_graph"]

Progress = Callable[[int], None]


@dataclass
class RawGraph:
    """What the export read, before encoding."""

    schema: ResolvedSchema
    counts: dict[str, int]
    nodes: dict[str, NodeColumns]
    edges: dict[str, EdgeColumns]


@dataclass
class _Plan:
    schema: ResolvedSchema
    counts: dict[str, int]
    node_ids: dict[str, np.ndarray]
    mixed_targets: set[str]  # relationships whose type also ends at other labels
    procedures: bool  # read through sybilgnn's server-side procedures


@dataclass
class _Task:
    """One chunk query: ``run(tx)`` is retried whole by ``execute_read``."""

    run: Callable[[Any], Any]
    cost: float
    items: int


def _plan(tx: Any, settings: Settings, only: dict[str, np.ndarray] | None = None) -> _Plan:
    """Schema check, count-store counts, and the fixed node set of every node type (every
    node of its label, or the internal ids ``only`` names)."""
    schema = resolve_schema(tx, settings.export, settings.split.holdout_property)
    counts = count_graph(tx, [n.label for n in schema.nodes.values()],
                         [r.type for r in schema.relationships.values()])
    node_ids = {name: (fetch_node_ids(tx, node.label) if only is None else
                       np.unique(np.asarray(only.get(name, []), dtype=np.int64)))
                for name, node in schema.nodes.items()}
    mixed = {name for name, rel in schema.relationships.items()
             if count_ending_at(tx, rel.type, schema.nodes[rel.target].label)
             != counts[f"rel:{rel.type}"]}
    return _Plan(schema, counts, node_ids, mixed, use_procedures(tx, settings.neo4j.procedures))


def _label_properties(schema: ResolvedSchema) -> tuple[list[str], list[str], list[str]]:
    """Numeric, string and time properties read on the labelled node type (when present)."""
    lab, present = schema.labels, schema.present_label_properties
    numeric = [p for p in [lab.label] if p in present]
    strings = [p for p in [lab.review, lab.fleet, schema.holdout_property, lab.source]
               if p and p in present]
    times = [p for p in [lab.label_time, lab.review_time] if p in present]
    return numeric, list(dict.fromkeys(strings)), times


def _node_reader(schema: ResolvedSchema, name: str, procedures: bool) -> NodeReader:
    node = schema.nodes[name]
    numeric, strings = list(node.features), list(node.categorical)
    times: list[str] = []
    sparse: list[str] = []
    if name == schema.labels.node_type:
        extra_numeric, extra_strings, times = _label_properties(schema)
        sparse = [*extra_numeric, *extra_strings, *times]
        numeric += [p for p in extra_numeric if p not in numeric]
        strings += [p for p in extra_strings if p not in strings]
    return NodeReader(node, numeric=numeric, strings=strings, times=times, sparse=sparse,
                      procedures=procedures)


def _run_tasks(driver: neo4j.Driver, session_kwargs: dict[str, Any], tasks: list[_Task],
               workers: int, progress: Progress | None) -> tuple[list[Any], list[frozenset[str]]]:
    """Run the tasks on ``workers`` sessions (largest first); results in task order.

    The first error stops the other workers after their current chunk and is raised here.
    """
    results: list[Any] = [None] * len(tasks)
    queue = deque(sorted(range(len(tasks)), key=lambda i: -tasks[i].cost))
    lock = threading.Lock()
    errors: list[BaseException] = []
    bookmarks: list[frozenset[str]] = []

    def work() -> None:
        with driver.session(**session_kwargs) as session:
            try:
                while True:
                    with lock:
                        if errors or not queue:
                            break
                        i = queue.popleft()
                    results[i] = session.execute_read(tasks[i].run)
                    if progress:
                        with lock:
                            progress(tasks[i].items)
            except BaseException as exc:  # handed to the caller's thread
                with lock:
                    errors.append(exc)
            with lock:
                bookmarks.append(frozenset(session.last_bookmarks().raw_values))

    threads = [threading.Thread(target=work, name=f"export-read-{k}", daemon=True)
               for k in range(max(1, min(workers, len(tasks))) - 1)]
    for thread in threads:
        thread.start()
    try:
        work()  # the caller's thread is one of the workers
        for thread in threads:
            thread.join()
    except BaseException:  # e.g. Ctrl-C while waiting: stop handing out chunks
        with lock:
            errors.append(RuntimeError("export interrupted"))
        raise
    if errors:
        raise errors[0]
    return results, bookmarks


def _edge_groups(schema: ResolvedSchema, procedures: bool) -> list[tuple[str, list[str]]]:
    """Relationships read together: through the procedures, every type leaving one source
    node type (one walk of each node's chain); through Cypher, one query per type."""
    groups: dict[str, list[str]] = {}
    for name, rel in schema.relationships.items():
        key = rel.source if procedures else name
        groups.setdefault(key, []).append(name)
    return [(schema.relationships[names[0]].source, names) for names in groups.values()]


def read_graph(driver: neo4j.Driver, settings: Settings, *, session_kwargs: dict[str, Any],
               workers: int = 2, progress: Progress | None = None,
               total: Callable[[int], None] | None = None,
               only: dict[str, np.ndarray] | None = None
               ) -> tuple[RawGraph, list[frozenset[str]]]:
    """Read the graph with ``workers`` parallel read sessions; returns the raw columns and
    the last bookmark of every session used (for the point-in-time check).

    ``total`` receives the number of progress units (nodes, then source nodes per edge
    type) once they are known. ``only`` (node type -> internal ids) reads the subgraph those
    nodes induce: their columns and the relationships between them.
    """
    chunk_size = settings.export.chunk_size
    with driver.session(**session_kwargs) as session:
        plan = session.execute_read(_plan, settings, only)
        bookmarks = [frozenset(session.last_bookmarks().raw_values)]
    schema, node_ids = plan.schema, plan.node_ids
    tasks: list[_Task] = []
    node_tasks: dict[str, list[int]] = {}
    node_readers = {name: _node_reader(schema, name, plan.procedures) for name in schema.nodes}
    for name, node_reader in node_readers.items():
        ids = node_ids[name]
        for lo, hi in chunks(len(ids), chunk_size):
            node_tasks.setdefault(name, []).append(len(tasks))
            tasks.append(_Task(partial(node_reader.read, ids=ids[lo:hi]),
                               cost=(hi - lo) * (1 + len(node_reader.columns)), items=hi - lo))
    edge_tasks = _add_edge_tasks(plan, chunk_size, tasks)
    if total:
        total(sum(task.items for task in tasks))
    results, worker_bookmarks = _run_tasks(driver, session_kwargs, tasks, workers, progress)
    nodes = {name: node_readers[name].assemble(node_ids[name],
                                               [results[i] for i in node_tasks.get(name, [])])
             for name in schema.nodes}
    index = {name: IdIndex(columns.internal_ids) for name, columns in nodes.items()}
    edges = {name: EdgeReader.assemble([results[i][k] for i, k in edge_tasks.get(name, [])],
                                       index[rel.source], index[rel.target])
             for name, rel in schema.relationships.items()}
    return RawGraph(schema, plan.counts, nodes, edges), bookmarks + worker_bookmarks


def _add_edge_tasks(plan: _Plan, chunk_size: int, tasks: list[_Task]
                    ) -> dict[str, list[tuple[int, int]]]:
    """Append one read task per chunk of source nodes and relationship group to ``tasks``;
    returns relationship name -> (task, position of its edges in that task's result)."""
    schema, counts = plan.schema, plan.counts
    edge_tasks: dict[str, list[tuple[int, int]]] = {}
    for source_name, group in _edge_groups(schema, plan.procedures):
        source = schema.nodes[source_name]
        rels = [schema.relationships[name] for name in group]
        edge_reader = EdgeReader(source, [
            EdgeSpec(rel.type, schema.nodes[rel.target], rel.weight,
                     check_target_label=name in plan.mixed_targets)
            for name, rel in zip(group, rels)], procedures=plan.procedures)
        ids = plan.node_ids[source_name]
        degree = sum(counts.get(f"rel:{rel.type}", 0) for rel in rels) \
            / max(1, counts.get(f"node:{source.label}", 1))
        for lo, hi in chunks(len(ids), chunk_size):
            for position, name in enumerate(group):
                edge_tasks.setdefault(name, []).append((len(tasks), position))
            tasks.append(_Task(partial(edge_reader.read, source_ids=ids[lo:hi]),
                               cost=(hi - lo) * 3 * degree, items=hi - lo))
    return edge_tasks
