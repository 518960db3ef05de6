"""A replay of operations: ingest day by day, score after every delivery, retrain on a cadence.

This is the loop a platform runs (deliveries arrive daily, ``sybilgnn score`` after each,
``sybilgnn retrain`` weekly), played over the simulator's deliveries (``simulate --days``)
with the same library calls the CLI verbs make. The simulator's ground truth
(``truth.parquet``) is read to *evaluate* the flags, never as labels: the models learn only
from the labels each delivery brings.

Per day it records what an operator watches: accounts scored and flagged, precision and
recall of the flags against the truth, new fleets, and the flags that flipped between two
runs of the same model version although no node within the model's reach changed (goal 0:
a score moves only when its data does). Per simulated fleet it records the detection delay,
days from the fleet's first event to its first flag.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sybilgnn.config import Settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.errors import InputError, SybilgnnError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.neo4j.cypher import quote
from sybilgnn.replay.changes import changed_nodes, within_reach

__all__ = ["DayRecord", "FleetDelay", "ReplaySummary", "clear_graph", "delivery_dirs",
           "run_replay"]

TRUTH_FILE, MANIFEST_FILE = "truth.parquet", "deliveries.json"


@dataclass
class DayRecord:
    day: int
    date: str
    accounts: int                 # accounts in the graph after the delivery
    new_accounts: int
    quarantined: int              # delivery rows ingest refused (see its quarantine file)
    flagged: int
    true_flags: int
    precision: float | None       # of the flags against the truth (None: nothing flagged)
    recall: float | None          # of the fakes in the graph (None: none yet)
    new_fleets: int
    model_version: str
    retrain: str                  # '' | 'promoted' | 'not promoted' | 'failed'
    flips_without_new_data: int   # same model as yesterday, nothing within reach changed
    within_reach_of_changes: int  # accounts whose score could move today
    drift_max: float
    seconds: float


@dataclass
class FleetDelay:
    fleet: str
    campaign: str
    size: int
    first_event_day: int          # 0: active before the series began
    first_flag_day: int | None
    delay_days: int | None        # None: never flagged, or active before the series


@dataclass
class ReplaySummary:
    days: list[DayRecord]
    fleets: list[FleetDelay]
    out_dir: Path
    minutes_per_day: float
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    retrain_failures: dict[int, str] = field(default_factory=dict)  # day -> why

    def table(self) -> str:
        """The per-day table as fixed-width text."""
        frame = pd.DataFrame([asdict(d) for d in self.days])
        for column in ("precision", "recall"):
            frame[column] = frame[column].map(lambda v: "" if v is None or v != v else f"{v:.3f}")
        frame["drift_max"] = frame["drift_max"].map(lambda v: f"{v:.3f}")
        frame["seconds"] = frame["seconds"].map(lambda v: f"{v:.1f}")
        return frame.drop(columns=["true_flags"]).to_string(index=False)


def delivery_dirs(root: Path) -> list[Path]:
    """``day-NNN`` folders in day order; an empty or missing series is an error."""
    days = sorted(p for p in Path(root).glob("day-[0-9][0-9][0-9]") if p.is_dir())
    if not days:
        raise InputError(f"{root}: no day-NNN delivery folders; write them with "
                         "`sybilgnn simulate --days N --out DIR`")
    return days


def _day_start(manifest: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(manifest["day_1_start"]).replace("Z", "+00:00"))


def _event_day(first_event: pd.Series, day_1: datetime) -> pd.Series:
    """Day of the series an instant falls in: 0 before day 1."""
    start = pd.Timestamp(day_1)
    days = ((first_event - start) // pd.Timedelta(days=1)) + 1
    return days.clip(lower=0)


def _flag_flips(previous: tuple[str, Snapshot, np.ndarray] | None, version: str,
                snapshot: Snapshot, flags: np.ndarray, reach: int) -> tuple[int, int]:
    """Flips under one model version outside the reach of any change, and that reach's size.

    A new label or verdict is new data about its own account only (it decides whether a
    high score is flagged or marked as contradicting the label), so it excuses that
    account's flip without reaching its neighbours.
    """
    before = previous[1] if previous else None
    reachable = within_reach(snapshot, changed_nodes(before, snapshot), reach)
    if previous is None or previous[0] != version:
        return 0, int(reachable.sum())
    ids = pd.Index(snapshot.id_maps[snapshot.labelled_type])
    old = pd.Series(previous[2], index=pd.Index(previous[1].id_maps[previous[1].labelled_type]))
    then = old.reindex(ids).to_numpy()
    known = ~pd.isna(then)
    relabelled = _labels(snapshot, ids) != _labels(previous[1], ids)
    flipped = known & (then.astype(bool, copy=False) != flags) & ~reachable & ~relabelled
    return int(flipped.sum()), int(reachable.sum())


def _labels(snapshot: Snapshot, ids: pd.Index) -> np.ndarray:
    """Each account's label after verdicts (-1 unknown, also for accounts not in it)."""
    labelled = snapshot.labelled_type
    store = snapshot.data[labelled]
    if "y" not in store:
        return np.full(len(ids), -1)
    labels = pd.Series(store.y.cpu().numpy(), index=pd.Index(snapshot.id_maps[labelled]))
    return labels.reindex(ids).fillna(-1).to_numpy(dtype=np.int64)


def _fleet_delays(truth: pd.DataFrame, first_flag: dict[str, int]) -> list[FleetDelay]:
    delays = []
    fakes = truth[truth["is_fake"] & truth["fleet"].notna()]
    for fleet, members in fakes.groupby("fleet", sort=True):
        started = int(members["first_event_day"].min())
        flagged = first_flag.get(str(fleet))
        delays.append(FleetDelay(
            fleet=str(fleet), campaign=str(members["campaign"].iloc[0]), size=len(members),
            first_event_day=started, first_flag_day=flagged,
            delay_days=None if flagged is None or started == 0 else flagged - started))
    return delays


def _campaign_delays(fleets: list[FleetDelay]) -> dict[str, dict[str, Any]]:
    """Median and worst delay per campaign over fleets that started during the series."""
    out: dict[str, dict[str, Any]] = {}
    for campaign in sorted({f.campaign for f in fleets}):
        mine = [f for f in fleets if f.campaign == campaign]
        started = [f for f in mine if f.first_event_day > 0]
        delays = [f.delay_days for f in started if f.delay_days is not None]
        out[campaign] = {
            "fleets": len(mine), "started_in_series": len(started),
            "flagged": sum(f.first_flag_day is not None for f in mine),
            "never_flagged_in_series": sum(f.first_flag_day is None for f in started),
            "median_delay_days": float(np.median(delays)) if delays else None,
            "worst_delay_days": max(delays) if delays else None,
        }
    return out


def clear_graph(settings: Settings) -> int:
    """Delete every node of the configured database (batched); returns how many there were."""
    from sybilgnn.neo4j.connection import open_driver

    with open_driver(settings) as driver, driver.session(database=settings.neo4j.database) as s:
        count = int(s.run("MATCH (n) RETURN count(n) AS n").single()["n"])
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    return count


def _require_empty_graph(settings: Settings) -> None:
    from sybilgnn.neo4j.connection import open_driver

    label = quote(GraphSchema.from_settings(settings).labelled_node.label)
    with open_driver(settings) as driver, driver.session(database=settings.neo4j.database) as s:
        count = int(s.run(f"MATCH (a:{label}) RETURN count(a) AS n").single()["n"])
    if count:
        raise InputError(
            f"the database {settings.neo4j.database!r} already holds {count:,} accounts; a "
            "replay starts from an empty graph: pass --fresh to clear it first (everything in "
            "it is deleted), or point neo4j.database at another database")


def run_replay(settings: Settings, deliveries: str | Path, *, retrain_every: int = 7,
               trials: int = 0, out_dir: str | Path | None = None, fresh: bool = False,
               say: Callable[[str], None] = print) -> ReplaySummary:
    """Ingest every ``day-NNN`` folder of ``deliveries`` in order; retrain on day 0 and every
    ``retrain_every`` days after it (through the promotion gate); score after every
    delivery with the champion; write ``days.csv``, ``fleets.csv`` and ``replay.json``.

    The graph must start empty (``fresh=True`` clears it); the registry is
    ``registry.model_name``, so give a replay a model name of its own.
    """
    if retrain_every < 1:
        raise InputError(f"--retrain-every must be at least 1 day, got {retrain_every}")
    root = Path(deliveries)
    series = _read_series(root)
    out = Path(out_dir) if out_dir is not None else root / "replay"
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        cleared = clear_graph(settings)
        say(f"cleared {cleared:,} nodes from database {settings.neo4j.database!r}")
    _require_empty_graph(settings)

    progress = _Progress()
    began = time.perf_counter()
    records = [_replay_day(settings, folder, series, progress, retrain_every=retrain_every,
                           trials=trials, say=say) for folder in series.days]
    last_day = int(series.days[-1].name.split("-")[1])
    truth = series.truth
    fleets = _fleet_delays(truth[truth["first_event_day"] <= last_day], progress.first_flag)
    summary = ReplaySummary(records, fleets, out,
                            (time.perf_counter() - began) / 60 / len(series.days),
                            _campaign_delays(fleets), progress.failures)
    _save(summary)
    return summary


@dataclass(frozen=True)
class _Series:
    """A simulated delivery series and its ground truth (read to evaluate, never as labels)."""

    days: list[Path]        # the day-NNN folders in day order
    day_1: datetime         # when day 1 starts
    truth: pd.DataFrame     # per account, with first_event_day
    fake_of: pd.Series      # account id -> is fake
    fleet_of: pd.Series     # account id -> simulated fleet (NaN: none)


def _read_series(root: Path) -> _Series:
    """The day folders, the manifest's day 1 and the truth of ``root``; a series written
    without its truth or manifest cannot be evaluated, so it is refused."""
    days = delivery_dirs(root)
    truth_path, manifest_path = root / TRUTH_FILE, root / MANIFEST_FILE
    if not truth_path.is_file() or not manifest_path.is_file():
        raise InputError(f"{root}: {TRUTH_FILE} and {MANIFEST_FILE} are needed to evaluate the "
                         "replay; write the series with `sybilgnn simulate --days N`")
    manifest = json.loads(manifest_path.read_text())
    day_1 = _day_start(manifest)
    truth = pd.read_parquet(truth_path)  # evaluation only: never written to the graph
    truth["first_event_day"] = _event_day(truth["first_event_at"], day_1).fillna(10**6)
    fake_of = pd.Series(truth["is_fake"].to_numpy(), index=pd.Index(truth["account_id"]))
    fleet_of = pd.Series(truth["fleet"].to_numpy(), index=pd.Index(truth["account_id"]))
    return _Series(days, day_1, truth, fake_of, fleet_of)


@dataclass
class _Progress:
    """What one replayed day hands to the next."""

    first_flag: dict[str, int] = field(default_factory=dict)  # simulated fleet -> day
    seen_fleets: set[str] = field(default_factory=set)        # fleet ids scoring reported
    failures: dict[int, str] = field(default_factory=dict)    # day -> why its retrain failed
    previous: tuple[str, Snapshot, np.ndarray] | None = None  # model version, snapshot, flags


def _replay_day(settings: Settings, folder: Path, series: _Series, progress: _Progress, *,
                retrain_every: int, trials: int, say: Callable[[str], None]) -> DayRecord:
    """One day as a platform runs it: ingest the delivery, retrain when due, score; the
    flags measured against the truth and against yesterday's."""
    from sybilgnn.ingest.pipeline import ingest_directory
    from sybilgnn.scoring.job import score_graph

    day = int(folder.name.split("-")[1])
    tick = time.perf_counter()
    ingested = ingest_directory(settings, folder)
    decision = ""
    if day % retrain_every == 0:
        decision = _retrain(settings, day, trials, progress.failures, say)
    scored = score_graph(settings)
    flags, previous = scored.flags, progress.previous
    ids = pd.Index(scored.snapshot.id_maps[scored.snapshot.labelled_type])
    fake = series.fake_of.reindex(ids).eq(True).to_numpy()
    true_flags = int((flags & fake).sum())
    version = scored.summary.model_version
    flips, reachable = _flag_flips(previous, version, scored.snapshot, flags, scored.reach)
    for fleet in series.fleet_of.reindex(ids[flags]).dropna().unique():
        progress.first_flag.setdefault(str(fleet), day)
    new_fleets = set(scored.summary.fleet_ids) - progress.seen_fleets
    progress.seen_fleets |= set(scored.summary.fleet_ids)
    record = DayRecord(
        day=day, date=_day_label(series.day_1, day),
        accounts=len(ids),
        new_accounts=len(ids) - (len(previous[1].id_maps[previous[1].labelled_type])
                                 if previous else 0),
        quarantined=ingested.rows_quarantined,
        flagged=int(flags.sum()), true_flags=true_flags,
        precision=true_flags / int(flags.sum()) if flags.any() else None,
        recall=true_flags / int(fake.sum()) if fake.any() else None,
        new_fleets=len(new_fleets), model_version=version, retrain=decision,
        flips_without_new_data=flips, within_reach_of_changes=reachable,
        drift_max=max(scored.summary.drift.values(), default=0.0),
        seconds=time.perf_counter() - tick)
    say(f"[day {day:3d}] {record.accounts:,} accounts, flagged {record.flagged:,} "
        f"(precision {_fmt(record.precision)}, recall {_fmt(record.recall)}), model "
        f"v{version}{', retrained: ' + decision if decision else ''}, "
        f"flips without new data {flips}, {record.seconds:.1f}s")
    progress.previous = (version, scored.snapshot, flags)
    return record


def _retrain(settings: Settings, day: int, trials: int, failures: dict[int, str],
             say: Callable[[str], None]) -> str:
    """One scheduled retrain: 'promoted', 'not promoted', or 'failed' (reason recorded)."""
    from sybilgnn.retrain import retrain

    try:
        outcome = retrain(settings, n_trials=trials)
    except SybilgnnError as exc:
        if day == 0:
            raise  # no champion to fall back on
        # What a scheduled job does: the retrain fails loudly, the champion scores on.
        failures[day] = str(exc)
        say(f"[day {day:3d}] retrain failed, the champion scores on: {exc}")
        return "failed"
    return "promoted" if outcome.decision.promoted else "not promoted"


def _day_label(day_1: datetime, day: int) -> str:
    """The delivery's calendar day; day 0 holds everything before day 1."""
    if day == 0:
        return f"<{day_1.date().isoformat()}"
    return (day_1 + timedelta(days=day - 1)).date().isoformat()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _save(summary: ReplaySummary) -> None:
    out = summary.out_dir
    pd.DataFrame([asdict(d) for d in summary.days]).to_csv(out / "days.csv", index=False)
    pd.DataFrame([asdict(f) for f in summary.fleets]).to_csv(out / "fleets.csv", index=False)
    (out / "replay.json").write_text(json.dumps({
        "minutes_per_day": summary.minutes_per_day, "campaigns": summary.campaigns,
        "retrain_failures": summary.retrain_failures,
        "days": [asdict(d) for d in summary.days]}, indent=2, default=str))
