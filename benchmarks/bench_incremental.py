"""Delivery to flag: a small delivery ingested and scored incrementally, against a full re-score.

Starts its own throw-away Neo4j (free ports, temporary home, jars from
``.sybilgnn/neo4j-lib``), simulates a world with ``simulate_deliveries`` (day 0 plus one
day), ingests day 0, labels every day-0 account from the simulator's truth (spread over 30
days, so the small model, ``--epochs``, flags about the fakes' share rather than an
arbitrary one), registers it as champion and scores the whole graph once. The delivery is
day 1's tables restricted to ``--share`` of the accounts (the accounts are drawn at random
among those day 1 touches), so it touches that share of the platform. Then, in one process:
ingest the delivery (transactional path), ``score --changed``, then a full re-score of the
same graph, and compare the two end states (flags, fleet memberships, largest score gap).

    .venv/bin/python benchmarks/bench_incremental.py --accounts 100000
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
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import bench_settings  # noqa: E402

from sybilgnn.export import export_snapshot  # noqa: E402
from sybilgnn.ingest.pipeline import ingest_directory  # noqa: E402
from sybilgnn.neo4j.connection import open_driver  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402
from sybilgnn.registry import log_and_register, set_champion  # noqa: E402
from sybilgnn.scoring import run_scoring  # noqa: E402
from sybilgnn.scoring.incremental import changed_region, find_base_run  # noqa: E402
from sybilgnn.scoring.incremental_run import score_changed  # noqa: E402
from sybilgnn.scoring.inference import load_scoring_model  # noqa: E402
from sybilgnn.simulate import simulate_deliveries  # noqa: E402
from sybilgnn.training import train  # noqa: E402


def reach_both_ways(driver: Any, settings: Any, base: Any, model: Any) -> dict[str, float]:
    """Seconds to find the same changed region through one Cypher query per hop and through
    the server-side walk, on the same graph (after the delivery), in this process."""
    seconds = {}
    regions = {}
    for mode in ("off", "required"):
        moded = settings.model_copy(update={"neo4j": settings.neo4j.model_copy(
            update={"procedures": mode})})
        started = time.perf_counter()
        regions[mode] = changed_region(driver, moded, base, model.reach, model.context_hops)
        seconds[mode] = round(time.perf_counter() - started, 2)
    assert np.array_equal(regions["off"].targets, regions["required"].targets)
    return seconds


def small_delivery(day: Path, out: Path, accounts: int, share: float, seed: int) -> int:
    """Day ``day``'s tables restricted to ``share`` of the platform's accounts (drawn among
    those the day touches); returns how many accounts the delivery names."""
    tables = {p.stem: pd.read_parquet(p) for p in day.glob("*.parquet")}
    touched = sorted(set().union(*(set(t["account_id"]) for t in tables.values()
                                   if "account_id" in t)))
    rng = np.random.default_rng(seed)
    size = min(len(touched), max(1, int(accounts * share)))
    chosen = set(rng.choice(np.asarray(touched, dtype=object), size=size, replace=False))
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if name == "ground_truth" or "account_id" not in table:
            continue
        table[table["account_id"].isin(chosen)].to_parquet(out / f"{name}.parquet", index=False)
    return size


def label_from_truth(driver: Any, truth: pd.DataFrame) -> None:
    rows = [{"id": str(a), "label": int(f), "day": i % 30}
            for i, (a, f) in enumerate(zip(truth["account_id"], truth["is_fake"]))]
    for lo in range(0, len(rows), 50_000):
        driver.execute_query(
            "UNWIND $rows AS row MATCH (a:Account {account_id: row.id}) "
            "SET a.label = row.label, a.label_source = 'bench', "
            "a.label_at = datetime('2024-01-01T00:00:00Z') + duration({days: row.day})",
            rows=rows[lo:lo + 50_000])


def graph_state(driver: Any) -> tuple[dict[str, tuple[float, str]], set[str],
                                      set[frozenset[str]]]:
    """(score and run id per account, flagged accounts, fleets as member sets)."""
    records, _, _ = driver.execute_query(
        "MATCH (a:Account) OPTIONAL MATCH (a)-[:MEMBER_OF]->(f:Fleet) "
        "RETURN a.account_id AS id, a.sybil_score AS score, a.sybil_flag AS flag, "
        "a.run_id AS run, f.fleet_id AS fleet")
    fleets: dict[str, set[str]] = {}
    for r in records:
        if r["fleet"] is not None:
            fleets.setdefault(r["fleet"], set()).add(r["id"])
    return ({r["id"]: (r["score"], r["run"]) for r in records},
            {r["id"] for r in records if r["flag"]},
            {frozenset(m) for m in fleets.values()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--scenario", default="medium")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--events-scale", type=float, default=0.3)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--pagecache", default="2g")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    settings = bench_settings(home, args.heap, args.pagecache, [
        f"scoring.report_dir={home / 'reports'}",
        f"registry.tracking_uri=sqlite:///{home / 'mlflow.db'}",
        f"registry.artifact_root={home / 'artifacts'}", "registry.model_name=bench-incremental",
        f"registry.lock_file={home / 'retrain.lock'}", f"train.epochs={args.epochs}",
        f"train.min_epochs={args.epochs}", "train.leave_one_campaign_out=false"])
    server = LocalNeo4j(settings.neo4j)
    print(f"starting Neo4j in {home} ...", file=sys.stderr)
    server.start()
    try:
        simulate_deliveries(home / "world", accounts=args.accounts, scenario=args.scenario,
                            seed=args.seed, days=1, events_scale=args.events_scale)
        delivered = small_delivery(home / "world" / "day-001", home / "delivery",
                                   args.accounts, args.share, args.seed)
        with open_driver(settings) as driver:
            ingest_directory(settings, home / "world" / "day-000", driver=driver)
            day0 = pd.read_parquet(home / "world" / "day-000" / "accounts.parquet")
            truth = pd.read_parquet(home / "world" / "truth.parquet")
            label_from_truth(driver, truth[truth["account_id"].isin(day0["account_id"])])
            snapshot = export_snapshot(settings, driver=driver, use_cache=False)
            result = train(snapshot, settings)
            version = log_and_register(result, snapshot, settings, run_name="bench")
            set_champion(settings, version.version, reason="benchmark")
            print("model trained; first full scoring ...", file=sys.stderr)
            run_scoring(settings, driver=driver)

            scoring_model = load_scoring_model(settings)
            base = find_base_run(driver, settings.neo4j.database, scoring_model.version)
            started = time.perf_counter()
            ingest = ingest_directory(settings, home / "delivery", driver=driver)
            ingest_s = time.perf_counter() - started
            started = time.perf_counter()
            incremental = score_changed(settings, driver=driver)
            incremental_s = time.perf_counter() - started
            walks = reach_both_ways(driver, settings, base, scoring_model)
            scores, flags, fleets = graph_state(driver)
            started = time.perf_counter()
            full = run_scoring(settings, driver=driver)
            full_s = time.perf_counter() - started
            full_scores, full_flags, full_fleets = graph_state(driver)
        # accounts the incremental run did not write kept the first full run's score: any
        # gap there would be a change outside the model's reach
        gaps = {k: abs(scores[k][0] - full_scores[k][0]) for k in full_scores}
        untouched = [gaps[k] for k in gaps if scores[k][1] != incremental.run_id]
        written = [gaps[k] for k in gaps if scores[k][1] == incremental.run_id]
        print(json.dumps({
            "accounts": full.n_scored, "delivery_accounts": delivered,
            "delivery_rows": sum(t.rows_read for t in ingest.tables.values()
                                 if hasattr(t, "rows_read")),
            "changed_nodes": incremental.n_seeds, "rescored": incremental.n_scored,
            "written": incremental.n_written, "ingest_s": round(ingest_s, 2),
            "reach_s": round(incremental.reach_s, 2),
            "reach_cypher_s": walks["off"], "reach_procedure_s": walks["required"],
            "reach_speedup": round(walks["off"] / walks["required"], 1),
            "export_s": round(incremental.export_s, 2),
            "inference_s": round(incremental.inference_s, 2),
            "evidence_s": round(incremental.evidence_s, 2),
            "fleets_s": round(incremental.fleets_s, 2),
            "write_s": round(incremental.write_s, 2),
            "incremental_s": round(incremental_s, 2), "full_s": round(full_s, 2),
            "speedup_scoring": round(full_s / incremental_s, 1),
            "delivery_to_flag_s": round(ingest_s + incremental_s, 2),
            "same_flags": flags == full_flags, "same_fleets": fleets == full_fleets,
            "max_gap_written": float(max(written, default=0.0)),
            "max_gap_not_written": float(max(untouched, default=0.0)),
            "gaps_over_1e-5": int(sum(g > 1e-5 for g in gaps.values())),
            "flagged": len(full_flags),
            "load_avg_1m": round(os.getloadavg()[0], 1)}), flush=True)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
