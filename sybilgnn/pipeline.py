"""The main job on embedded defaults: simulate (or take given tables), ingest, retrain,
score and report — each stage the same library call its own CLI verb makes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sybilgnn.config import Settings
from sybilgnn.graph_schema import GraphSchema

__all__ = ["PipelineSummary", "run_pipeline", "run_replay_pipeline"]


@dataclass
class PipelineSummary:
    data_dir: Path
    ingest: Any
    retrain: Any
    scoring: Any
    report: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    truth: Any = None  # TruthReport of the run's flags on a simulated world, else None


def _guard_other_world(settings: Settings, directory: Path, fresh: bool,
                       say: Callable[[str], None]) -> None:
    """A simulated world is ingested into an empty graph, or into one that holds it already
    (a rerun): merged into another world's accounts (same id scheme) it would be nonsense."""
    from sybilgnn.errors import InputError
    from sybilgnn.ingest.tables import file_digest
    from sybilgnn.neo4j.connection import open_driver
    from sybilgnn.neo4j.cypher import quote
    from sybilgnn.replay.run import clear_graph

    if fresh:
        say(f"  cleared {clear_graph(settings):,} nodes from database {settings.neo4j.database!r}")
        return
    key = f"accounts:{file_digest(directory / 'accounts.parquet')}"
    label = quote(GraphSchema.from_settings(settings).labelled_node.label)
    with open_driver(settings) as driver, driver.session(database=settings.neo4j.database,
                                                         notifications_min_severity="OFF") as s:
        accounts = int(s.run(f"MATCH (a:{label}) RETURN count(a) AS n").single()["n"])
        ours = s.run("MATCH (f:IngestFile {file_key: $key}) RETURN count(f) AS n",
                     key=key).single()["n"]
    if accounts and not ours:
        raise InputError(
            f"the database {settings.neo4j.database!r} already holds {accounts:,} accounts that "
            f"are not from the simulated platform {directory}; ingesting it there would merge "
            "two worlds. Run `sybilgnn pipeline --fresh` to clear the database first (it "
            "deletes everything in it), or point neo4j.database at another database")


def run_pipeline(
    settings: Settings,
    *,
    data_dir: str | Path | None = None,
    accounts: int | None = None,
    scenario: str | None = None,
    seed: int | None = None,
    trials: int | None = None,
    fresh: bool = False,
    say: Callable[[str], None] = print,
) -> PipelineSummary:
    """Run every stage in order; ``data_dir=None`` simulates a platform first (into an
    empty graph, or one that already holds it; ``fresh`` clears the graph first)."""
    from sybilgnn.ingest.pipeline import ingest_directory
    from sybilgnn.reporting.report import write_report
    from sybilgnn.retrain import retrain
    from sybilgnn.scoring.job import score_graph

    seconds: dict[str, float] = {}
    timed = _stage_timer(seconds, say)
    if data_dir is None:
        data_dir = _simulate(settings, timed, accounts=accounts, scenario=scenario, seed=seed,
                             fresh=fresh, say=say)
    elif fresh:
        _guard_other_world(settings, Path(data_dir), fresh, say)
    directory = Path(data_dir)
    ingested = timed("ingest", lambda: ingest_directory(settings, directory, progress=True))
    say(f"  nodes {ingested.nodes}  relationships {ingested.relationships}")
    outcome = timed("retrain", lambda: retrain(settings, n_trials=trials, show_progress=True))
    say(f"  registered version {outcome.trained.version.version}; "
        f"{'promoted to champion' if outcome.decision.promoted else 'not promoted'}: "
        f"{outcome.decision.reason}")
    graph = timed("score", lambda: score_graph(settings))
    scored = graph.summary
    say(f"  scored {scored.n_scored:,} accounts, flagged {scored.n_flagged:,} "
        f"in {scored.n_fleets:,} fleets (run {scored.run_id}, model v{scored.model_version})")
    report = timed("report", lambda: write_report(settings, scored.run_id))
    measured = _measure_truth(settings, directory, graph, outcome.trained.loco)
    return PipelineSummary(directory, ingested, outcome, scored, report, seconds, measured)


_Timed = Callable[[str, Callable[[], Any]], Any]


def _stage_timer(seconds: dict[str, float], say: Callable[[str], None]) -> _Timed:
    """A runner that announces a stage, runs it and records its seconds in ``seconds``
    (the summary's per-stage timings)."""
    def timed(stage: str, work: Callable[[], Any]) -> Any:
        say(f"[{stage}] ...")
        began = time.perf_counter()
        value = work()
        seconds[stage] = time.perf_counter() - began
        say(f"[{stage}] done in {seconds[stage]:.1f}s")
        return value

    return timed


def _simulate(settings: Settings, timed: _Timed, *, accounts: int | None,
              scenario: str | None, seed: int | None, fresh: bool,
              say: Callable[[str], None]) -> Path:
    """Simulate a platform into a folder named by its settings (a rerun reuses the name)
    and make sure the graph may take it."""
    from sybilgnn.simulate import simulate_platform

    sim = settings.simulate
    n, name, s = accounts or sim.accounts, scenario or sim.scenario, sim.seed if seed is None else seed
    folder = Path(".sybilgnn") / "platform" / f"{name}-{n}-seed{s}"
    summary = timed("simulate", lambda: simulate_platform(folder, accounts=n, scenario=name,
                                                          seed=s, progress=True))
    say(f"  simulated {n:,} accounts ({summary.fake_accounts:,} fake), scenario {name}")
    _guard_other_world(settings, folder, fresh, say)
    return folder


def _measure_truth(settings: Settings, directory: Path, graph: Any, loco: Any = None) -> Any:
    """The run's flags, and the retrain's leave-one-campaign-out (``loco``), against a
    simulated world's answer key (evaluation only); ``None`` for real data, which has none."""
    from sybilgnn.evaluation import loco_against_truth, read_truth, truth_report

    truth = read_truth(directory)
    if truth is None:
        return None
    node_type = graph.snapshot.labelled_type
    store = graph.snapshot.data[node_type]
    labelled = (store.y.cpu().numpy() >= 0) if "y" in store else None
    report = truth_report(graph.snapshot.id_maps[node_type], graph.scores, graph.flags,
                          truth, active_fleet_members(settings), labelled)
    if loco is not None:
        report.loco_lines = loco_against_truth(loco, truth, seed=settings.train.seed)
    return report


def active_fleet_members(settings: Settings) -> dict[str, list[str]]:
    """Account ids (keys of the labelled node type) of every active fleet, as the last
    scoring run wrote them."""
    from sybilgnn.neo4j.connection import open_driver
    from sybilgnn.neo4j.cypher import quote

    node = GraphSchema.from_settings(settings).labelled_node
    with open_driver(settings) as driver:
        records, _, _ = driver.execute_query(
            f"MATCH (a:{quote(node.label)})-[:MEMBER_OF]->(f:Fleet {{active: true}}) "
            f"RETURN f.fleet_id AS fleet, collect(a.{quote(node.key)}) AS members",
            database_=settings.neo4j.database)
    return {str(r["fleet"]): [str(m) for m in r["members"]] for r in records}


def run_replay_pipeline(settings: Settings, *, days: int, retrain_every: int = 7,
                        accounts: int | None = None, scenario: str | None = None,
                        seed: int | None = None, trials: int = 0,
                        say: Callable[[str], None] = print) -> Any:
    """``pipeline --days N``: simulate N days of deliveries, then replay them on a cleared
    local graph under a registered model name of the replay's own
    (``<name>-replay-<UTC time>``), so it starts with no champion and the main job's
    champion is left alone."""
    from datetime import datetime, timezone

    from sybilgnn.errors import InputError
    from sybilgnn.replay import run_replay
    from sybilgnn.simulate import simulate_deliveries

    if not settings.neo4j.managed:
        raise InputError("pipeline --days clears the graph before the replay, so it runs only "
                         "on the package's own local Neo4j (neo4j.managed=true); use "
                         "`sybilgnn replay DIR` against another database")
    sim = settings.simulate
    n, name = accounts or sim.accounts, scenario or sim.scenario
    s = sim.seed if seed is None else seed
    folder = Path(".sybilgnn") / "platform" / f"{name}-{n}-seed{s}-days{days}"
    if not (folder / "deliveries.json").is_file():
        say(f"[simulate] {days} days of deliveries into {folder} ...")
        simulate_deliveries(folder, accounts=n, scenario=name, seed=s, days=days, progress=True)
    replay_settings = settings.model_copy(update={"registry": settings.registry.model_copy(
        update={"model_name": f"{settings.registry.model_name}-replay-"
                              f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"})})
    return run_replay(replay_settings, folder, retrain_every=retrain_every, trials=trials,
                      fresh=True, say=say)
