"""Batch scoring throughput: export -> inference -> fleets + evidence -> write-back, timed apart.

Starts its own throw-away Neo4j (free ports, temporary home, jars from ``.sybilgnn/neo4j-lib``)
and builds the synthetic graph of ``bench_export.py`` (per account: 3 USED_IP, 1 PAID_WITH,
1 PROMPT_SIMILAR). The model is an untrained ``SybilGNN`` (hidden 64, 2 layers; the timing does
not depend on the weights) and the threshold flags the top ``--flag-share`` of accounts, so
fleets and evidence run on a realistic number of flagged accounts. The model reads the graph
as a registered one does: through a ``Preprocessor`` fitted on the first snapshot (its
transform and the drift check are timed with inference). Two runs are timed: the first on a
graph never scored; before each later one a delivery of ``--delivery-share`` new accounts
(with their IP, card and similarity edges, from a country the model never saw) is written,
so the run is the scoring time per delivery.

    .venv/bin/python benchmarks/bench_score.py --accounts 100000
"""

from __future__ import annotations

import argparse
import json
import os
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

from bench_export import bench_settings, build_graph  # noqa: E402

from sybilgnn.config import ModelSettings  # noqa: E402
from sybilgnn.data.preprocessing import Preprocessor  # noqa: E402
from sybilgnn.export import export_snapshot  # noqa: E402
from sybilgnn.export.schema import default_account_features  # noqa: E402
from sybilgnn.models import build_model  # noqa: E402
from sybilgnn.neo4j.connection import open_driver  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402
from sybilgnn.scoring import score_snapshot  # noqa: E402
from sybilgnn.training import predict  # noqa: E402


def jvm_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of the Neo4j JVM (load-independent, unlike wall time)."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def add_delivery(driver: Any, start: int, count: int, features: list[str], accounts: int) -> float:
    """``count`` new accounts ``acc<start>..`` with the graph's edge pattern; returns seconds."""
    started = time.perf_counter()
    feature_map = ", ".join(f"{name}: rand() * {j + 1}" for j, name in enumerate(features))
    n_ips, n_cards = max(accounts // 4, 1), max(accounts // 10, 1)
    driver.execute_query(
        "UNWIND range($lo, $hi - 1) AS i CREATE (a:Account {account_id: 'acc' + i, "
        f"{feature_map}, country: 'IS', plan: 'pro'}}) "
        "WITH a, i MATCH (ip:IP {ip_id: 'ip' + (i % $ips)}), "
        "(p:PaymentInstrument {pm_id: 'pm' + (i % $cards)}), "
        "(b:Account {account_id: 'acc' + (i % $n)}) "
        "CREATE (a)-[:USED_IP {n_events: 1 + i % 20}]->(ip), "
        "(a)-[:PAID_WITH {n_charges: 1 + i % 9}]->(p), "
        "(a)-[:PROMPT_SIMILAR {similarity: 0.7}]->(b)",
        lo=start, hi=start + count, ips=n_ips, cards=n_cards, n=accounts)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=50_000, help="scoring.batch_size")
    parser.add_argument("--flag-share", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--delivery-share", type=float, default=0.01,
                        help="new accounts written before each run after the first")
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--pagecache", default="2g")
    parser.add_argument("--keep-home", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-score-"))
    features = default_account_features() or [f"f_{j}" for j in range(12)]
    settings = bench_settings(home, args.heap, args.pagecache, [
        f"scoring.batch_size={args.batch_size}", f"scoring.report_dir={home / 'reports'}"])
    nodes = dict(settings.export.nodes)
    nodes["account"] = nodes["account"].model_copy(update={"features": features})
    settings = settings.model_copy(
        update={"export": settings.export.model_copy(update={"nodes": nodes})})
    server = LocalNeo4j(settings.neo4j)
    print(f"starting Neo4j in {home} ...", file=sys.stderr)
    server.start()
    results = []
    try:
        with open_driver(settings) as driver:
            build = build_graph(driver, args.accounts, features)
            print(f"graph built in {build['nodes_s'] + build['edges_s']:.0f} s", file=sys.stderr)
            model = None
            preprocessor: Preprocessor | None = None
            pid = server.status().pid
            total_accounts = args.accounts
            for run in range(args.runs):
                delivered = 0
                if run > 0 and args.delivery_share > 0:
                    delivered = max(1, int(args.accounts * args.delivery_share))
                    delivery_s = add_delivery(driver, total_accounts, delivered, features,
                                              args.accounts)
                    total_accounts += delivered
                    print(f"delivery of {delivered:,} accounts written in {delivery_s:.1f} s",
                          file=sys.stderr)
                cpu_py, cpu_db = time.process_time(), jvm_cpu_s(pid)
                started = time.perf_counter()
                snapshot = export_snapshot(settings, driver=driver, use_cache=False)
                export_s = time.perf_counter() - started
                if model is None:
                    data = snapshot.data
                    model = build_model(data.metadata(),
                                        {t: int(data[t].x.size(1)) for t in data.node_types},
                                        ModelSettings(hidden=64, layers=2)).eval()
                started = time.perf_counter()
                if preprocessor is None:  # fitted once, as at training
                    preprocessor = Preprocessor.fit(snapshot)
                encoded = preprocessor.transform(snapshot)
                drift = preprocessor.drift(snapshot)
                scores = predict(model, encoded)
                inference_s = time.perf_counter() - started
                threshold = float(np.quantile(scores, 1 - args.flag_share))
                summary = score_snapshot(
                    driver, settings, encoded, scores, threshold=threshold, model_version=1,
                    model=model, timings={"export_s": export_s, "inference_s": inference_s},
                    drift=drift)
                cpu_py, cpu_db = time.process_time() - cpu_py, jvm_cpu_s(pid) - cpu_db
                total = export_s + inference_s + summary.evidence_s + summary.fleets_s + \
                    summary.write_s
                row = {"run": run + 1, "accounts": snapshot.num_accounts,
                       "delivered_accounts": delivered,
                       "directed_edges": sum(int(s.edge_index.shape[1])
                                             for _, s in snapshot.data.edge_items()),
                       "flagged": summary.n_flagged, "fleets": summary.n_fleets,
                       "export_s": round(export_s, 2), "inference_s": round(inference_s, 2),
                       "evidence_s": round(summary.evidence_s, 2),
                       "fleets_s": round(summary.fleets_s, 2),
                       "write_s": round(summary.write_s, 2), "total_s": round(total, 2),
                       "accounts_written_per_s": round(snapshot.num_accounts / summary.write_s),
                       "drift_max": round(max(drift.values(), default=0.0), 4),
                       "cpu_python_s": round(cpu_py, 2), "cpu_neo4j_s": round(cpu_db, 2),
                       "load_avg_1m": round(os.getloadavg()[0], 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
    finally:
        server.stop()
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
