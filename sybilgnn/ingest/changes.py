"""Change stamps: which nodes a delivery touched, so incremental scoring can find them.

Every transactional ingest takes the next value of one counter, ``(:ChangeClock {name:
'graph'}).seq``, and stamps ``changed_seq`` on every node whose inputs, labels or
relationships it wrote (accounts, IPs, payment instruments; both ends of a pruned
similarity edge, in the pruning's own transaction). While it runs, its value is listed in
the clock's ``active``; it leaves the list when the delivery is recorded in the ledger.
Before reading the graph, a scoring run records the first value that may still be news to
the next run (``first_unseen_seq``): the oldest ingest still in flight, or the next value
to be handed out. A counter, not a clock: nothing depends on the client's and the
server's clocks agreeing. An ingest killed part-way stays listed as in flight, so later
runs keep re-scoring what it touched (safe, a little slower) until the same delivery is
ingested again, which replaces the entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sybilgnn.ingest.procedures import NodeWrite
from sybilgnn.ingest.writer import quiet_session, write_batches

__all__ = ["CHANGE_PROPERTY", "finish_change", "first_unseen_seq", "next_change_seq",
           "stamp_changes"]

CHANGE_PROPERTY = "changed_seq"
_NEXT = """
MERGE (c:ChangeClock {name: 'graph'})
WITH c, coalesce(c.seq, 0) + 1 AS seq,
     [i IN range(0, size(coalesce(c.active, [])) - 1) WHERE c.active_keys[i] <> $key] AS keep
SET c.seq = seq,
    c.active = [i IN keep | c.active[i]] + seq,
    c.active_keys = [i IN keep | c.active_keys[i]] + $key
RETURN seq
"""
_FINISH = """
MATCH (c:ChangeClock {name: 'graph'})
WITH c, [i IN range(0, size(coalesce(c.active, [])) - 1) WHERE c.active[i] <> $seq] AS keep
SET c.active = [i IN keep | c.active[i]], c.active_keys = [i IN keep | c.active_keys[i]]
"""
_FIRST_UNSEEN = """
OPTIONAL MATCH (c:ChangeClock {name: 'graph'})
RETURN reduce(low = coalesce(c.seq, 0) + 1, s IN coalesce(c.active, []) |
              CASE WHEN s < low THEN s ELSE low END) AS seq
"""
# (label, key property) of the node types an ingest writes
_STAMPED = {"Account": "account_id", "IP": "ip_id", "PaymentInstrument": "pm_id"}


def next_change_seq(driver: Any, database: str, delivery_key: str) -> int:
    """Advance the graph's change counter and return the new value (one per ingest run).

    ``delivery_key`` names the delivery (its files' digests): a rerun of the same delivery
    replaces the in-flight entry of the attempt that was killed before it."""
    with quiet_session(driver, database) as session:
        return int(session.execute_write(
            lambda tx: tx.run(_NEXT, key=delivery_key).single()["seq"]))


def finish_change(tx: Any, seq: int) -> None:
    """The ingest that took ``seq`` is done (run inside its ledger transaction)."""
    tx.run(_FINISH, seq=int(seq)).consume()


def first_unseen_seq(tx: Any) -> int:
    """The lowest change value a run reading the graph now might not see in full: the
    oldest ingest still in flight, else the next value to be handed out."""
    return int(tx.run(_FIRST_UNSEEN).single()["seq"])


def stamp_changes(driver: Any, database: str, seq: int, touched: dict[str, Iterable[str]],
                  batch_size: int, *, procedures: bool = False) -> int:
    """Set ``changed_seq = seq`` on the nodes of ``touched`` (label -> keys); returns how
    many keys were stamped. Idempotent: a resumed ingest stamps again with its own seq."""
    stamped = 0
    for label, keys in touched.items():
        key = _STAMPED[label]  # a fixed vocabulary: nothing from input reaches the query text
        if procedures:
            stamped += write_batches(driver, database, [(k, int(seq)) for k in sorted(set(keys))],
                                     batch_size, work=NodeWrite(label, key, (CHANGE_PROPERTY,)))
            continue
        rows = [{"id": k} for k in sorted(set(keys))]
        query = (f"UNWIND $rows AS row MATCH (n:{label} {{{key}: row.id}}) "
                 f"SET n.{CHANGE_PROPERTY} = $seq")
        stamped += write_batches(driver, database, rows, batch_size, query=query,
                                 params={"seq": int(seq)})
    return stamped
