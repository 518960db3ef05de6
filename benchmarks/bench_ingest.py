"""Ingest throughput into a throw-away local Neo4j: relationships written per second.

Generates event tables with ``sybilgnn.simulate.simulate_platform`` (or reuses ``--tables``),
starts its own Neo4j (temporary home, free ports, jars from ``.sybilgnn/neo4j-lib``), ingests
once and prints per-phase timings, then ingests again to show that a re-ingest is a no-op.

``--mode bulk`` (default) measures the first load of the empty database through
``neo4j-admin database import``; ``--mode transactional`` the Cypher path that deltas take;
``--mode both`` runs bulk, wipes the database, and runs the Cypher path on the same tables.
``--replicate K`` (bulk only) writes K disjoint copies of the import frames (every id gets a
suffix ``r0`` … ``r{K-1}``) just before the CSV stage, so the write phases (CSV, import,
restart, schema) run at K times the size without K times the validation, MinHash and
similarity work; copying the frames is timed apart and left out of the ``csv`` phase.

    .venv/bin/python benchmarks/bench_ingest.py --accounts 100000 --mode both
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sybilgnn.config import load_settings  # noqa: E402
from sybilgnn.ingest import bulk, ingest_directory  # noqa: E402
from sybilgnn.neo4j.connection import open_driver  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replicate_import_frames(copies: int) -> dict[str, Any]:
    """Make the bulk path write ``copies`` disjoint copies of its frames; returns what the
    copies were (node counts, seconds spent copying), filled in when the ingest runs."""
    record: dict[str, Any] = {"copies": copies}
    write = bulk.write_import_csvs

    def copied(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        if frame.empty:
            return frame
        parts = [frame.assign(**{k: frame[k].astype(str) + f"r{i}" for k in keys})
                 for i in range(copies)]
        return pd.concat(parts, ignore_index=True)

    def write_copies(directory: Path, accounts: pd.DataFrame, frames: Any) -> Any:
        started = time.perf_counter()
        accounts = copied(accounts, ["account_id"])
        frames.ip_nodes = copied(frames.ip_nodes, ["ip_id"])
        frames.pm_nodes = copied(frames.pm_nodes, ["pm_id"])
        frames.used_ip = copied(frames.used_ip, ["account_id", "ip_id"])
        frames.paid_with = copied(frames.paid_with, ["account_id", "pm_id"])
        frames.similar = copied(frames.similar, ["account_a", "account_b"])
        record["copy_s"] = time.perf_counter() - started
        record["nodes"] = {"Account": len(accounts), "IP": len(frames.ip_nodes),
                           "PaymentInstrument": len(frames.pm_nodes)}
        return write(directory, accounts, frames)

    bulk.write_import_csvs = write_copies
    return record


def main() -> None:
    # a plain `kill` must still run the finally blocks that stop the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--scenario", default="medium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tables", type=Path, default=None, help="reuse an existing table dir")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache", default="1g")
    parser.add_argument("--mode", choices=["bulk", "transactional", "both"], default="bulk")
    parser.add_argument("--replicate", type=int, default=1,
                        help="bulk only: write this many disjoint copies of the import frames")
    args = parser.parse_args()
    if args.replicate < 1 or (args.replicate > 1 and args.mode != "bulk"):
        parser.error("--replicate must be >= 1, and above 1 only with --mode bulk")
    copies = replicate_import_frames(args.replicate) if args.replicate > 1 else None

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        tables = args.tables
        if tables is None:
            from sybilgnn.simulate import simulate_platform
            tables = work / "tables"
            started = time.perf_counter()
            simulate_platform(tables, accounts=args.accounts, scenario=args.scenario,
                              seed=args.seed)
            print(f"simulated {args.accounts} accounts in {time.perf_counter() - started:.1f}s")
        home = work / "neo4j"
        settings = load_settings(config_file=None, environ={}, overrides=[
            f"neo4j.home={home}", f"neo4j.lib_dir={REPO / '.sybilgnn' / 'neo4j-lib'}",
            f"neo4j.password_file={home / 'password'}", f"neo4j.bolt_port={free_port()}",
            f"neo4j.http_port={free_port()}", f"neo4j.heap={args.heap}",
            f"neo4j.pagecache={args.pagecache}", f"hashing.secret_file={work / 'secret'}",
            f"ingest.batch_size={args.batch_size}", "ingest.bulk_min_rows=0"])
        server = LocalNeo4j(settings.neo4j)
        server.start()
        reports = {}
        try:
            if args.mode in ("bulk", "both"):
                first = ingest_directory(settings, tables)
                if copies is not None:
                    # the copying is benchmark set-up, not CSV writing
                    first.timings["csv"] -= copies["copy_s"]
                    first.nodes = copies["nodes"]
                second = ingest_directory(settings, tables)
                reports["bulk"] = _report(first, second)
                if copies is not None:
                    reports["bulk"]["replicated"] = {"copies": copies["copies"],
                                                     "copy_s": round(copies["copy_s"], 2)}
            if args.mode in ("transactional", "both"):
                with open_driver(settings) as driver:
                    _wipe(driver)
                    first = ingest_directory(settings, tables, driver=driver)
                    second = ingest_directory(settings, tables, driver=driver)
                reports["transactional"] = _report(first, second)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(reports) == 2:
        reports["bulk_speedup_end_to_end"] = round(
            reports["transactional"]["total_s"] / reports["bulk"]["total_s"], 2)
    print(json.dumps(reports, indent=2))


def _wipe(driver: Any) -> None:
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


def _report(first: Any, second: Any) -> dict[str, Any]:
    """Relationship throughput of the write phases and of the whole ingest."""
    t = first.timings
    rels = sum(first.relationships.values())
    # the phases that write to Neo4j (pandas aggregation inside them included); MinHash,
    # similarity search and validation are the same work in both modes and left out
    write_phases = (("csv", "import", "restart", "schema") if first.mode == "bulk"
                    else ("schema", "accounts", "labels", "ip_events", "payments", "prompt_state",
                          "similarity_write", "similarity_prune", "features"))
    write_s = sum(t.get(p, 0.0) for p in write_phases)
    return {
        "mode": first.mode,
        "rows": {k: v.rows_read for k, v in first.tables.items()},
        "nodes": first.nodes,
        "relationships": first.relationships,
        "timings_s": {k: round(v, 2) for k, v in t.items()},
        "total_s": round(first.seconds, 1),
        "write_phase_s": round(write_s, 2),
        "rels_per_s_write_phase": round(rels / write_s) if write_s else None,
        "rels_per_s_import_only": (round(rels / t["import"]) if t.get("import") else None),
        # the admin tool's own stages (bulk): the ceiling of any first load on this machine
        "import_tool_stages_s": first.import_stages,
        "rels_per_s_import_tool": (round(rels / first.import_stages["tool total"])
                                   if first.import_stages.get("tool total") else None),
        "rels_per_s_end_to_end": round(rels / first.seconds),
        "event_rows_per_s_end_to_end": round(sum(v.rows_read for v in first.tables.values())
                                             / first.seconds),
        "reingest_s": round(second.seconds, 2),
        "similarity": first.similarity,
    }


if __name__ == "__main__":
    main()
