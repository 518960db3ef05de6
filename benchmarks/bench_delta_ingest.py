"""Delta ingest: today's Cypher path against the server-side procedures, on the same delta.

Starts its own throw-away Neo4j (free ports, temporary home, jars from
``.sybilgnn/neo4j-lib``), simulates a world with ``simulate_deliveries`` (day 0 plus two
days), loads day 0 without the held-back accounts (below) through the bulk import (the base
world), then stops the server and keeps
a copy of its store. Two kinds of delta per ``--share`` (1% and 10% of the accounts by default):
``daily``, day 2's rows of that share of the accounts (drawn among those day 2 touches: a
daily delta, a few relationships per account), and ``backfill``, the whole history of that
share of the accounts, held back from the base (many relationships per account: the
throughput case). For each delta and each path, in one process: restore the base store,
start the server, ingest a warm-up delta (day 1's rows of other accounts: a server that has
run deltas before, as in production), then the delta, transactionally (``neo4j.procedures=off``: the Cypher
path; ``required``: the procedures), stop. Both paths start from the very same graph, so
their resulting graphs must be equal: the benchmark compares every node the delta stamped
and every relationship of those nodes, and the counts of the whole graph.

    .venv/bin/python benchmarks/bench_delta_ingest.py --accounts 100000

Prints one JSON line per world size: relationships written, per-phase seconds and
relationships/s of the write phases (schema, accounts, labels, ip_events, payments, prompt
state, similarity write and prune, features with the change stamps, ledger) for both paths.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import bench_settings  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sybilgnn.config import Settings  # noqa: E402
from sybilgnn.ingest.pipeline import ingest_directory  # noqa: E402
from sybilgnn.neo4j.connection import open_driver  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402
from sybilgnn.simulate import simulate_deliveries  # noqa: E402

WRITE_PHASES = ("schema", "accounts", "labels", "ip_events", "payments", "prompt_state",
                "similarity_write", "similarity_prune", "features", "ledger")
PATHS = (("cypher", "off"), ("procedures", "required"))


def _with(settings: Settings, procedures: str) -> Settings:
    return settings.model_copy(update={
        "neo4j": settings.neo4j.model_copy(update={"procedures": procedures})})


def delta_state(driver: Any) -> dict[str, Any]:
    """Counts of the whole graph, and every node the last ingest stamped with its
    relationships (properties included, sorted): what the two paths must agree on."""
    counts = {r["k"]: r["n"] for r in driver.execute_query(
        "MATCH (n) RETURN head(labels(n)) AS k, count(*) AS n UNION ALL "
        "MATCH ()-[r]->() RETURN type(r) AS k, count(*) AS n").records}
    seq = driver.execute_query("MATCH (c:ChangeClock) RETURN c.seq AS s").records[0]["s"]
    nodes = driver.execute_query(
        "MATCH (n) WHERE n.changed_seq = $seq RETURN labels(n) AS l, properties(n) AS p",
        seq=seq).records
    rels = driver.execute_query(
        "MATCH (n) WHERE n.changed_seq = $seq MATCH (n)-[r]-(m) "
        "RETURN coalesce(startNode(r).account_id, '') AS a, type(r) AS t, "
        "coalesce(endNode(r).account_id, endNode(r).ip_id, endNode(r).pm_id) AS b, "
        "properties(r) AS p", seq=seq).records
    return {"counts": counts,
            "nodes": sorted(repr((r["l"], sorted(r["p"].items()))) for r in nodes),
            "rels": sorted(set(repr((r["a"], r["t"], r["b"], sorted(r["p"].items())))
                               for r in rels))}


def _run_path(server: LocalNeo4j, settings: Settings, warmup: Path, delivery: Path
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    server.start()
    try:
        with open_driver(settings) as driver:
            # a server that has run deltas before (as in production): query plans, JIT
            warm = ingest_directory(settings, warmup, driver=driver).seconds
            load_before = os.getloadavg()[0]
            summary = ingest_directory(settings, delivery, driver=driver)
            load_after = os.getloadavg()[0]
            state = delta_state(driver)
    finally:
        server.stop()
    rels = sum(summary.relationships.values())
    write_s = sum(summary.timings.get(p, 0.0) for p in WRITE_PHASES)
    return {
        "relationships": summary.relationships, "nodes": summary.nodes,
        "features_updated": summary.features_updated,
        "timings_s": {k: round(v, 2) for k, v in summary.timings.items()},
        "write_phase_s": round(write_s, 2),
        "rels_per_s_write_phase": round(rels / write_s) if write_s else None,
        "total_s": round(summary.seconds, 2),
        "rels_per_s_end_to_end": round(rels / summary.seconds),
        "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        "warmup_delta_s": round(warm, 2),
    }, state


def _tables(day: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in day.glob("*.parquet") if p.stem != "ground_truth"}


def _subset(tables: dict[str, pd.DataFrame], out: Path, accounts: set[str], inside: bool
            ) -> Path:
    """The rows of ``accounts`` (``inside``) or of every other account, as a delivery."""
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        mask = table["account_id"].isin(accounts).to_numpy()
        table[mask if inside else ~mask].to_parquet(out / f"{name}.parquet", index=False)
    return out


def _deliveries(world: Path, home: Path, accounts: int, shares: list[float], seed: int
                ) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """The base (day 0 without the held-back accounts) and, per delta, (warm-up, delta):
    ``daily-S``: day 2's rows of S of the accounts (warm-up: day 1's of others);
    ``backfill-S``: the whole history of S of the accounts, held back from the base."""
    rng = np.random.default_rng(seed)
    day0 = _tables(world / "day-000")
    ids = day0["accounts"]["account_id"].to_numpy(dtype=object)
    held = rng.choice(ids, size=int(len(ids) * max(shares)), replace=False)
    base = _subset(day0, home / "base", set(held), inside=False)
    deltas = {}
    day1, day2 = _tables(world / "day-001"), _tables(world / "day-002")
    for share in shares:
        size = max(1, int(accounts * share))
        picks = []
        for day in (day1, day2):
            touched = set().union(*(set(t["account_id"]) for t in day.values())) - set(held)
            pool = np.asarray(sorted(touched), dtype=object)
            picks.append(set(rng.choice(pool, size=min(size, len(pool)), replace=False)))
        warm = _subset(day1, home / f"warm-{share}", picks[0], inside=True)
        deltas[f"daily-{share}"] = (warm, _subset(day2, home / f"daily-{share}", picks[1],
                                                  inside=True))
        deltas[f"backfill-{share}"] = (warm, _subset(day0, home / f"backfill-{share}",
                                                     set(held[:size]), inside=True))
    return base, deltas


def bench_size(accounts: int, args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-delta-ingest-"))
    settings = bench_settings(home, args.heap, args.pagecache, [
        f"hashing.secret_file={home / 'secret'}", f"ingest.batch_size={args.batch_size}",
        "ingest.bulk_min_rows=0"])
    server = LocalNeo4j(settings.neo4j)
    try:
        started = time.perf_counter()
        simulate_deliveries(home / "world", accounts=accounts, scenario=args.scenario,
                            seed=args.seed, days=2, events_scale=args.events_scale)
        base_dir, deltas = _deliveries(home / "world", home, accounts, args.share, args.seed)
        simulate_s = time.perf_counter() - started
        server.start()
        try:
            started = time.perf_counter()
            base = ingest_directory(settings, base_dir)  # bulk import
            base_s = time.perf_counter() - started
        finally:
            server.stop()
        shutil.copytree(home / "data", home / "data-base")
        report: dict[str, Any] = {
            "accounts": accounts, "batch_size": args.batch_size,
            "base": {"mode": base.mode, "relationships": base.relationships,
                     "seconds": round(base_s, 1)},
            "simulate_s": round(simulate_s, 1)}
        for name, (warm, delta) in deltas.items():
            if args.kinds and not name.startswith(tuple(args.kinds)):
                continue
            states, entry = {}, {}
            for path, procedures in PATHS:
                shutil.rmtree(home / "data")
                shutil.copytree(home / "data-base", home / "data")
                entry[path], states[path] = _run_path(server, _with(settings, procedures),
                                                      warm, delta)
            entry["same_graph"] = states["cypher"] == states["procedures"]
            entry["stamped_nodes"] = len(states["cypher"]["nodes"])
            old, new = (entry[n]["rels_per_s_write_phase"] for n, _ in PATHS)
            entry["speedup_write_phase"] = round(new / old, 2) if old and new else None
            entry["speedup_end_to_end"] = round(entry["cypher"]["total_s"]
                                                / entry["procedures"]["total_s"], 2)
            report[name] = entry
            print(json.dumps({"accounts": accounts, name: entry}), file=sys.stderr, flush=True)
        return report
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    # a plain `kill` must still run the finally blocks that stop the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, nargs="+", default=[100_000])
    parser.add_argument("--share", type=float, nargs="+", default=[0.01, 0.1],
                        help="shares of the accounts each delta touches (one delta per share)")
    parser.add_argument("--scenario", default="medium")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--events-scale", type=float, default=1.0)
    parser.add_argument("--kinds", nargs="*", default=["daily", "backfill"],
                        help="which deltas: daily, backfill")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--pagecache", default="2g")
    args = parser.parse_args()
    for accounts in args.accounts:
        print(json.dumps(bench_size(accounts, args)), flush=True)


if __name__ == "__main__":
    main()
