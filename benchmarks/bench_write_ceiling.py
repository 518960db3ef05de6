"""What a running Neo4j on this machine writes per second through Cypher, without sybilgnn.

The ingest goal is stated in relationships per second. This benchmark measures the server's
own transactional ceiling on the same box, independently of sybilgnn's loaders: it creates
``--accounts`` keyed ``:Account`` nodes and ``--ips`` keyed ``:IP`` nodes (uniqueness
constraints on both keys), then writes ``--rels`` relationships between random pairs with
three integer properties, the shape of ``USED_IP``, in ``UNWIND $rows`` transactions of
``--batch`` rows: once with ``CREATE`` (the cheapest possible write) and once with ``MERGE``
of the same pairs again (what a delta does when the pair exists). Parameters are built
before the clock starts; every figure is the wall time of the transactions alone.

    .venv/bin/python benchmarks/bench_write_ceiling.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import bench_settings  # noqa: E402

from sybilgnn.neo4j.connection import open_driver  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402

NODE_QUERY = "UNWIND $keys AS key CREATE (:{label} {{key: key}})"
REL_QUERY = ("UNWIND $rows AS row MATCH (a:Account {{key: row.a}}) MATCH (i:IP {{key: row.i}}) "
             "{verb} (a)-[r:USED_IP]->(i) SET r.first_ms = row.f, r.last_ms = row.l, r.n = row.n")


def _timed_batches(session: Any, query: str, name: str, rows: list[Any], batch: int) -> float:
    """Seconds to write ``rows`` as ``$name`` in transactions of ``batch`` rows."""
    started = time.perf_counter()
    for lo in range(0, len(rows), batch):
        chunk = rows[lo:lo + batch]
        session.execute_write(lambda tx, c=chunk: tx.run(query, {name: c}).consume())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--ips", type=int, default=100_000)
    parser.add_argument("--rels", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache", default="1g")
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    accounts = [f"acct-{i:08d}" for i in range(args.accounts)]
    ips = [f"ip-{i:08d}" for i in range(args.ips)]
    pairs = zip(rng.integers(0, args.accounts, args.rels).tolist(),
                rng.integers(0, args.ips, args.rels).tolist())
    rows = [{"a": accounts[a], "i": ips[i], "f": k, "l": k + 1, "n": 1}
            for k, (a, i) in enumerate(pairs)]

    home = Path(tempfile.mkdtemp(prefix="bench-write-"))
    settings = bench_settings(home, args.heap, args.pagecache)
    server = LocalNeo4j(settings.neo4j)
    server.start()
    report: dict[str, Any] = {"accounts": args.accounts, "ips": args.ips, "rels": args.rels,
                              "batch": args.batch}
    try:
        with open_driver(settings) as driver, driver.session(database="neo4j") as session:
            for label in ("Account", "IP"):
                session.run(f"CREATE CONSTRAINT FOR (n:{label}) REQUIRE n.key IS UNIQUE").consume()
            session.run("CALL db.awaitIndexes(300)").consume()
            node_s = sum(_timed_batches(session, NODE_QUERY.format(label=label), "keys", keys,
                                        args.batch)
                         for label, keys in (("Account", accounts), ("IP", ips)))
            report["nodes_s"] = round(node_s, 2)
            report["nodes_per_s"] = round((args.accounts + args.ips) / node_s)
            for verb in ("CREATE", "MERGE"):
                seconds = _timed_batches(session, REL_QUERY.format(verb=verb), "rows", rows,
                                         args.batch)
                report[f"{verb.lower()}_s"] = round(seconds, 2)
                report[f"{verb.lower()}_rels_per_s"] = round(args.rels / seconds)
            stored = session.run("MATCH ()-[r:USED_IP]->() RETURN count(r) AS n").single()["n"]
            # MERGE found every pair CREATE had made: no relationship was added twice
            report["relationships_stored"] = stored
            if stored != args.rels:
                raise SystemExit(f"expected {args.rels} relationships, found {stored}")
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
