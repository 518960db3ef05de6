"""Export throughput: the snapshot export against a plain one-record-per-edge export.

Three exports of the same graph: the plain one (one Bolt record per node and per edge), the
snapshot export through sybilgnn's server-side procedures (``neo4j.procedures=required``, the
default path on the managed server) and the snapshot export through columnar Cypher
(``neo4j.procedures=off``, the path for servers without the procedures).

Starts its own throw-away Neo4j (free ports, temporary home, jars from ``.sybilgnn/neo4j-lib``),
generates a synthetic account graph with ``UNWIND range()`` Cypher (per account: 3 USED_IP,
1 PAID_WITH, 1 PROMPT_SIMILAR; one IP per 4 accounts, one card per 10), then times both
exports on the same warm server and checks that they read the same edges.

    .venv/bin/python benchmarks/bench_export.py --accounts 100000 [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sybilgnn.config import NodeSchema, Settings, load_settings  # noqa: E402
from sybilgnn.export import DEFAULT_WORKERS, export_snapshot  # noqa: E402
from sybilgnn.export.schema import default_account_features  # noqa: E402
from sybilgnn.neo4j.connection import open_driver  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402

BATCH = 50_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_settings(home: Path, heap: str, pagecache: str, extra: list[str] | None = None) -> Settings:
    """Settings of a throw-away server in ``home`` on free ports, jars from the repo's lib."""
    return load_settings(None, [
        f"neo4j.home={home}", f"neo4j.lib_dir={REPO / '.sybilgnn' / 'neo4j-lib'}",
        f"neo4j.password_file={home / 'password'}", f"neo4j.bolt_port={free_port()}",
        f"neo4j.http_port={free_port()}", f"neo4j.heap={heap}", f"neo4j.pagecache={pagecache}",
        f"export.cache_dir={home / 'snapshots'}", *(extra or [])], environ={})


def build_graph(driver: Any, accounts: int, features: list[str]) -> dict[str, float]:
    """Synthetic graph, batch by batch; returns the build timings."""
    n_ips, n_cards = max(accounts // 4, 1), max(accounts // 10, 1)
    timings = {}
    started = time.perf_counter()
    for label, key in (("Account", "account_id"), ("IP", "ip_id"), ("PaymentInstrument", "pm_id")):
        driver.execute_query(f"CREATE CONSTRAINT IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE")
    feature_map = ", ".join(f"{name}: rand() * {j + 1}" for j, name in enumerate(features))
    for lo in range(0, accounts, BATCH):
        driver.execute_query(
            "UNWIND range($lo, $hi - 1) AS i CREATE (a:Account {account_id: 'acc' + i, "
            f"{feature_map}, country: ['US','DE','FR','BR','IN','GB'][i % 6], "
            "plan: ['free','pro','team','api'][i % 4]}) "
            "WITH a, i WHERE i % 10 = 0 SET a.label = CASE WHEN i % 30 = 0 THEN 1 ELSE 0 END, "
            "a.label_at = datetime({epochSeconds: 1700000000 + i * 10}), "
            "a.campaign = CASE WHEN i % 30 = 0 THEN 'c' + (i % 3) ELSE null END",
            lo=lo, hi=min(lo + BATCH, accounts))
    for lo in range(0, n_ips, BATCH):
        driver.execute_query("UNWIND range($lo, $hi - 1) AS i CREATE (:IP {ip_id: 'ip' + i, "
                             "asn: i % 50, is_datacenter: i % 3 = 0})", lo=lo, hi=min(lo + BATCH, n_ips))
    for lo in range(0, n_cards, BATCH):
        driver.execute_query("UNWIND range($lo, $hi - 1) AS i CREATE (:PaymentInstrument {pm_id: "
                             "'pm' + i, issuer_country: ['US','GB'][i % 2], is_prepaid: i % 5 = 0})",
                             lo=lo, hi=min(lo + BATCH, n_cards))
    timings["nodes_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for lo in range(0, accounts, BATCH // 2):
        driver.execute_query(
            "UNWIND range($lo, $hi - 1) AS i MATCH (a:Account {account_id: 'acc' + i}) "
            "UNWIND [0, 1, 2] AS j MATCH (ip:IP {ip_id: 'ip' + ((i * 7 + j * 13) % $ips)}) "
            "CREATE (a)-[:USED_IP {n_events: 1 + (i + j) % 20}]->(ip)",
            lo=lo, hi=min(lo + BATCH // 2, accounts), ips=n_ips)
        driver.execute_query(
            "UNWIND range($lo, $hi - 1) AS i MATCH (a:Account {account_id: 'acc' + i}), "
            "(p:PaymentInstrument {pm_id: 'pm' + (i % $cards)}) "
            "CREATE (a)-[:PAID_WITH {n_charges: 1 + i % 9}]->(p) "
            "WITH a, i MATCH (b:Account {account_id: 'acc' + ((i * 31 + 1) % $n)}) "
            "CREATE (a)-[:PROMPT_SIMILAR {similarity: 0.5 + (i % 50) / 100.0}]->(b)",
            lo=lo, hi=min(lo + BATCH // 2, accounts), cards=n_cards, n=accounts)
    timings["edges_s"] = time.perf_counter() - started
    return timings


def naive_export(driver: Any, settings: Settings) -> dict[str, Any]:
    """One Bolt record per node and per edge, Python dicts for the id maps."""
    export = settings.export
    row_of: dict[str, dict[str, int]] = {}
    features: dict[str, np.ndarray] = {}
    edges: dict[str, np.ndarray] = {}
    with driver.session(database=settings.neo4j.database) as session:
        def work(tx: Any) -> None:
            for name, node in export.nodes.items():
                props = ", ".join(f"n.{p} AS p{j}" for j, p in enumerate(node.features or []))
                query = f"MATCH (n:{node.label}) RETURN n.{node.key} AS key" + (f", {props}" if props else "")
                keys, rows = [], []
                for record in tx.run(query):
                    values = record.values()
                    keys.append(values[0])
                    rows.append([np.nan if v is None else float(v) for v in values[1:]])
                order = sorted(range(len(keys)), key=keys.__getitem__)
                row_of[name] = {keys[i]: r for r, i in enumerate(order)}
                features[name] = np.asarray([rows[i] for i in order], dtype=np.float32)
            for name, rel in export.relationships.items():
                src_node, dst_node = export.nodes[rel.source], export.nodes[rel.target]
                query = (f"MATCH (a:{src_node.label})-[r:{rel.type}]->(b:{dst_node.label}) "
                         f"RETURN a.{src_node.key} AS s, b.{dst_node.key} AS d, r.{rel.weight} AS w")
                src_rows, dst_rows = row_of[rel.source], row_of[rel.target]
                triples = [(src_rows[r["s"]], dst_rows[r["d"]], r["w"]) for r in tx.run(query)]
                edges[name] = np.asarray(triples, dtype=np.float64).reshape(-1, 3)
        session.execute_read(work)
    return {"edges": edges, "features": features}


def with_mode(settings: Settings, procedures: str) -> Settings:
    return settings.model_copy(update={"neo4j": settings.neo4j.model_copy(
        update={"procedures": procedures})})


def edge_set_digest(pairs: np.ndarray) -> int:
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return hash(pairs.astype(np.int64).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--pagecache", default="2g")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each export (best kept)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="parallel read sessions of the columnar export")
    parser.add_argument("--naive-repeat", type=int, default=1,
                        help="timed runs of the plain export (it barely warms up; best kept)")
    parser.add_argument("--keep-home", action="store_true")
    parser.add_argument("--skip-cypher", action="store_true",
                        help="leave out the columnar Cypher export (procedures and plain only)")
    args = parser.parse_args()
    if args.naive_repeat < 1 or args.repeat < 1:
        parser.error("--repeat and --naive-repeat must be at least 1")

    home = Path(tempfile.mkdtemp(prefix="bench-export-"))
    features = default_account_features() or [f"f_{j}" for j in range(12)]
    settings = bench_settings(home, args.heap, args.pagecache)
    nodes = dict(settings.export.nodes)
    nodes["account"] = nodes["account"].model_copy(update={"features": features})
    settings = settings.model_copy(update={"export": settings.export.model_copy(update={"nodes": nodes})})
    server = LocalNeo4j(settings.neo4j)
    print(f"starting Neo4j in {home} ...", file=sys.stderr)
    server.start()
    try:
        with open_driver(settings) as driver:
            build = build_graph(driver, args.accounts, features)
            records, _, _ = driver.execute_query("MATCH ()-[r]->() RETURN count(r) AS c")
            rels = int(records[0]["c"])
            print(f"graph: {args.accounts} accounts, {rels} relationships "
                  f"(built in {build['nodes_s'] + build['edges_s']:.0f} s)", file=sys.stderr)
            fast_times, cypher_times, naive_times = [], [], []
            snapshot = cypher_snapshot = None
            read_s = float("inf")
            with_procedures = with_mode(settings, "required")
            plain_cypher = with_mode(settings, "off")
            # each export's runs back to back, so one path's server-side garbage and cache
            # churn do not land in another's timing
            for _ in range(args.naive_repeat):
                started = time.perf_counter()
                naive = naive_export(driver, settings)
                naive_times.append(time.perf_counter() - started)
                print(f"  naive {naive_times[-1]:.2f} s", file=sys.stderr)
            for _ in range(args.repeat):
                started = time.perf_counter()
                snapshot = export_snapshot(with_procedures, driver=driver, use_cache=False,
                                           workers=args.workers)
                fast_times.append(time.perf_counter() - started)
                read_s = min(read_s, snapshot.meta["read_seconds"])
                print(f"  procedures {fast_times[-1]:.2f} s "
                      f"(read {snapshot.meta['read_seconds']:.2f} s)", file=sys.stderr)
            for _ in range(0 if args.skip_cypher else args.repeat):
                started = time.perf_counter()
                cypher_snapshot = export_snapshot(plain_cypher, driver=driver,
                                                  use_cache=False, workers=args.workers)
                cypher_times.append(time.perf_counter() - started)
                print(f"  columnar Cypher {cypher_times[-1]:.2f} s", file=sys.stderr)
        assert snapshot is not None
        if cypher_snapshot is not None:
            assert cypher_snapshot.content_hash == snapshot.content_hash, "the two paths differ"
        for name, rel in settings.export.relationships.items():
            pairs = snapshot.data[(rel.source, name, rel.target)].edge_index.numpy().T
            if rel.source == rel.target:
                naive_pairs = naive["edges"][name][:, :2]
                naive_pairs = np.concatenate([naive_pairs, naive_pairs[:, ::-1]])
            else:
                naive_pairs = naive["edges"][name][:, :2]
            assert edge_set_digest(pairs) == edge_set_digest(naive_pairs), f"{name} edges differ"
        fast, slow = min(fast_times), min(naive_times)
        result = {
            "accounts": args.accounts, "relationships": rels,
            "directed_edges_in_snapshot": sum(int(s.edge_index.shape[1]) for _, s in snapshot.data.edge_items()),
            "procedures_first_s": round(fast_times[0], 3), "procedures_s": round(fast, 3), "naive_s": round(slow, 3),
            "procedures_rels_per_s": round(rels / fast), "naive_rels_per_s": round(rels / slow),
            "speedup": round(slow / fast, 2), "procedures_read_s": read_s,
            **({"cypher_columnar_first_s": round(cypher_times[0], 3),
                "cypher_columnar_s": round(min(cypher_times), 3),
                "cypher_columnar_rels_per_s": round(rels / min(cypher_times)),
                "cypher_speedup": round(slow / min(cypher_times), 2)} if cypher_times else {}),
            "workers": args.workers, "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        }
        print(json.dumps(result))
    finally:
        server.stop()
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
