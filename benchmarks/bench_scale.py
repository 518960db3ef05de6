"""Where one machine ends: every stage of the main job at one size, wall time and peak memory.

Starts its own throw-away Neo4j (free ports, temporary home, jars from
``.sybilgnn/neo4j-lib``) and runs the package's own commands one after another, each in its
own process, as an operator would: ``simulate``, ``ingest`` (the first load), ``export``,
``train`` (a few full-graph epochs, no refit, no leave-one-campaign-out, no baselines: the
epoch is what grows with the graph) and a full ``score``. Per stage: wall seconds, the
command's own peak RSS (``wait4``), the Neo4j server's peak RSS so far (``VmHWM``), and the
exit status; a stage killed for memory is recorded as where the limit was hit and the
stages after it that need its output are skipped. With ``--model-from REGISTRY_DIR`` a
failed ``train`` leaves scoring to the champion of an earlier run's registry (the model is
inductive: its preprocessing travels with it), so the scoring stage is still measured.

    .venv/bin/python benchmarks/bench_scale.py --accounts 1000000 [--events-scale 0.3] \
        [--keep-registry DIR]
    .venv/bin/python benchmarks/bench_scale.py --accounts 5000000 --model-from DIR

One JSON line per stage, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import free_port  # noqa: E402

from sybilgnn.config import load_settings  # noqa: E402
from sybilgnn.neo4j.server import LocalNeo4j  # noqa: E402

CLI = [str(REPO / ".venv" / "bin" / "sybilgnn")]
KILLED_FOR_MEMORY = (-9, 137)


def peak_rss_gib(pid: int | None) -> float | None:
    """A live process's peak resident set (VmHWM), GiB; None when it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 2**20, 2)
    except OSError:
        return None
    return None


def run_stage(name: str, args: list[str], overrides: list[str], server: LocalNeo4j,
              log: Path) -> dict[str, Any]:
    """One command in its own process: wall time, its peak RSS, the server's so far."""
    command = CLI + [arg for o in overrides for arg in ("--set", o)] + args
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    row = {"stage": name, "rc": rc, "wall_s": round(time.perf_counter() - started, 1),
           "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
           "neo4j_peak_rss_gib": peak_rss_gib(server.status().pid),
           "killed_for_memory": rc in KILLED_FOR_MEMORY, "load_1m": round(os.getloadavg()[0], 1)}
    print(json.dumps(row), flush=True)
    return row


def promote_latest(overrides: list[str]) -> None:
    """Make the version ``train`` just registered the champion (no gate: a benchmark)."""
    from sybilgnn.registry import set_champion
    from sybilgnn.registry._aliases import version_of

    settings = load_settings(None, overrides, environ={})
    set_champion(settings, version_of(settings, "challenger"), reason="bench_scale")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--scenario", default="medium")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--events-scale", type=float, default=1.0,
                        help="every account's activity times this (prompts, IP events)")
    parser.add_argument("--heap", default="4g")
    parser.add_argument("--pagecache", default="4g")
    parser.add_argument("--until", choices=["simulate", "ingest", "export", "train", "score"],
                        default="score", help="the last stage to run")
    parser.add_argument("--keep-registry", type=Path, help="copy the registry here at the end")
    parser.add_argument("--model-from", type=Path,
                        help="a kept registry: its champion scores when train cannot")
    return parser.parse_args()


def bench_overrides(home: Path, registry: Path, args: argparse.Namespace) -> list[str]:
    """A throw-away server on free ports, a registry of its own, a few full-graph epochs."""
    return [
        f"neo4j.home={home / 'neo4j'}", f"neo4j.lib_dir={REPO / '.sybilgnn' / 'neo4j-lib'}",
        f"neo4j.password_file={home / 'password'}", f"neo4j.bolt_port={free_port()}",
        f"neo4j.http_port={free_port()}", f"neo4j.heap={args.heap}",
        f"neo4j.pagecache={args.pagecache}", f"export.cache_dir={home / 'snapshots'}",
        f"registry.tracking_uri=sqlite:///{registry / 'mlflow.db'}",
        f"registry.artifact_root={registry / 'artifacts'}", "registry.model_name=bench-scale",
        "registry.experiment=bench-scale", f"registry.lock_file={home / 'retrain.lock'}",
        f"scoring.report_dir={home / 'reports'}", f"train.epochs={args.epochs}",
        f"train.min_epochs={args.epochs}", "train.leave_one_campaign_out=false",
        "train.refit_on_all_labels=false", "train.bootstrap=0"]


def run_plan(home: Path, args: argparse.Namespace, overrides: list[str], server: LocalNeo4j
             ) -> list[dict[str, Any]]:
    """The stages in order, up to ``--until`` or the first that fails (train excepted when
    an earlier registry can score)."""
    world, log = home / "world", home / "stages.log"
    print(f"home {home}; command output in {log}", file=sys.stderr)
    plan = [("simulate", ["simulate", "--accounts", str(args.accounts), "--scenario",
                          args.scenario, "--seed", str(args.seed), "--out", str(world),
                          "--events-scale", str(args.events_scale)]),
            ("ingest", ["ingest", str(world)]),
            ("export", ["export", "--out", str(home / "snapshot")]),
            ("train", ["train", "--snapshot", str(home / "snapshot"), "--no-baselines"]),
            ("score", ["score"])]
    rows: list[dict[str, Any]] = []
    for name, command in plan:
        if name == "score" and rows[-1]["rc"] != 0 and not args.model_from:
            break  # nothing to score with
        row = run_stage(name, command, overrides, server, log)
        rows.append(row)
        if name == "train" and row["rc"] == 0:
            promote_latest(overrides)
        elif row["rc"] != 0 and name != "train":
            break  # later stages need this one's output
        if name == args.until:
            break
    return rows


def main() -> None:
    args = parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    registry = home / "registry"
    if args.model_from:
        shutil.copytree(args.model_from, registry)
    overrides = bench_overrides(home, registry, args)
    server = LocalNeo4j(load_settings(None, overrides, environ={}).neo4j)
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        rows = run_plan(home, args, overrides, server)
        if args.keep_registry and any(r["stage"] == "train" and r["rc"] == 0 for r in rows):
            shutil.copytree(registry, args.keep_registry, dirs_exist_ok=True)
    finally:
        server.stop()
    first_limit = next((r["stage"] for r in rows if r["rc"] != 0), None)
    print(json.dumps({"accounts": args.accounts, "scenario": args.scenario,
                      "events_scale": args.events_scale,
                      "epochs": args.epochs, "first_failed_stage": first_limit,
                      "total_wall_s": round(sum(r["wall_s"] for r in rows), 1)}), flush=True)
    if first_limit is None:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
