"""``simulate_platform``: build a world and write its event tables as Parquet.

Determinism: every random draw comes from a generator seeded with ``(seed, stream[,
chunk])``, chunks have a fixed size, and Parquet is written without timestamps in its
metadata, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from sybilgnn.errors import InputError
from sybilgnn.simulate.events import (
    FleetStyles,
    build_fleet_styles,
    ip_events_chunk,
    payments_chunk,
    prompts_chunk,
)
from sybilgnn.simulate.formatting import format_account_ids
from sybilgnn.simulate.infra import CardRegistry, IpRegistry, build_cards, build_ip_registry
from sybilgnn.simulate.labels import (
    accounts_table,
    ground_truth_table,
    labelled_per_campaign,
    labels_table,
)
from sybilgnn.simulate.lookalikes import LOOKALIKES
from sybilgnn.simulate.scenarios import Scenario, get_scenario
from sybilgnn.simulate.schema import TABLES
from sybilgnn.simulate.world import World, build_population

__all__ = ["SimulationSummary", "simulate_platform", "write_parquet", "CHUNK_ACCOUNTS"]

CHUNK_ACCOUNTS = 50_000   # fixed: part of what makes output depend on the seed alone
_EVENT_TABLES = ("ip_events", "payments", "prompts")
_STREAM = {"population": 1, "ip": 2, "cards": 3, "styles": 4, "labels": 5, "lookalikes": 6,
           "ip_events": 10, "payments": 11, "prompts": 12}


@dataclass(frozen=True)
class SimulationSummary:
    """What was written, for the CLI and for tests."""

    out_dir: Path
    scenario: str
    seed: int
    accounts: int
    events_scale: float
    rows: dict[str, int]                  # table name -> rows written
    fakes_per_campaign: dict[str, int]
    fleets_per_campaign: dict[str, int]
    labelled_per_campaign: dict[str, int]
    lookalikes: dict[str, int]            # benign look-alike kind -> accounts
    company_teams: int                    # teams the company_team look-alikes form
    interactions: int                     # modelled; prompts hold a sample of them
    fake_interactions: int
    elapsed_s: float

    @property
    def fake_accounts(self) -> int:
        return sum(self.fakes_per_campaign.values())


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _check_args(out_dir: Path, accounts: int, seed: int, events_scale: float) -> None:
    if not isinstance(accounts, (int, np.integer)) or isinstance(accounts, bool):
        raise InputError(f"accounts must be an integer, got {accounts!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if not events_scale > 0:
        raise InputError(f"events_scale must be > 0, got {events_scale!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory")
    stale = [str(out_dir / f"{t}.csv") for t in TABLES if (out_dir / f"{t}.csv").exists()]
    if stale:
        raise InputError(f"{out_dir} already holds CSV tables ({', '.join(stale)}); ingest would "
                         "not know which copy to read: remove them or choose another --out")


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write under a hidden name, then rename: a killed run leaves no half table."""
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, path)


def simulate_platform(
    out_dir: str | os.PathLike[str],
    *,
    accounts: int,
    scenario: str | Scenario,
    seed: int,
    events_scale: float = 1.0,
    progress: bool = False,
) -> SimulationSummary:
    """Simulate ``accounts`` accounts under ``scenario`` and write the event tables.

    ``scenario`` is a name from SCENARIOS or a Scenario (e.g. a ``dataclasses.replace``
    variant of one). ``events_scale`` multiplies every account's activity (interactions,
    prompts, sessions), so tests can run on tiny volumes with the same population structure.
    """
    began = time.perf_counter()
    out = Path(out_dir)
    sc = get_scenario(scenario)
    _check_args(out, accounts, seed, events_scale)
    out.mkdir(parents=True, exist_ok=True)

    world = build_population(_rng(seed, _STREAM["population"]), int(accounts), sc, events_scale,
                             lookalike_rng=_rng(seed, _STREAM["lookalikes"]))
    infra = _Infra(registry=build_ip_registry(_rng(seed, _STREAM["ip"]), world),
                   cards=build_cards(_rng(seed, _STREAM["cards"]), world),
                   styles=build_fleet_styles(_rng(seed, _STREAM["styles"]), world))
    width = max(7, len(str(world.n - 1)))
    ids = format_account_ids(np.arange(world.n), width)

    rows: dict[str, int] = {}
    for name, table in (("accounts", accounts_table(world, ids)),
                        ("ground_truth", ground_truth_table(world, ids)),
                        ("labels", labels_table(_rng(seed, _STREAM["labels"]), world, ids))):
        write_parquet(out / f"{name}.parquet", table)
        rows[name] = table.num_rows
    rows.update(_write_events(out, seed, world, infra, ids, progress))
    return _summary(out, sc.name, seed, events_scale, world, rows, time.perf_counter() - began)


@dataclass(frozen=True)
class _Infra:
    """What every event chunk draws from: IP pools, payment cards, fleets' prompt styles."""

    registry: IpRegistry
    cards: CardRegistry
    styles: FleetStyles


def _write_events(out: Path, seed: int, world: World, infra: _Infra, ids: pa.Array,
                  progress: bool) -> dict[str, int]:
    """The event tables, ``CHUNK_ACCOUNTS`` accounts at a time (each chunk on its own
    stream, so memory stays flat and output depends on the seed alone), written under
    hidden names and renamed at the end; rows written per table."""
    writers = {t: pq.ParquetWriter(out / f".{t}.parquet.partial", TABLES[t], compression="zstd")
               for t in _EVENT_TABLES}
    rows = {t: 0 for t in _EVENT_TABLES}
    try:
        starts = range(0, world.n, CHUNK_ACCOUNTS)
        for chunk, lo in enumerate(tqdm(starts, desc="simulating", unit="chunk",
                                        disable=not progress)):
            for name, table in _event_chunk(seed, chunk, world, infra, ids, lo).items():
                writers[name].write_table(table)
                rows[name] += table.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    for t in _EVENT_TABLES:
        os.replace(out / f".{t}.parquet.partial", out / f"{t}.parquet")
    return rows


def _event_chunk(seed: int, chunk: int, world: World, infra: _Infra, ids: pa.Array,
                 lo: int) -> dict[str, pa.Table]:
    """The events of the accounts from ``lo`` on, one chunk's worth, per event table."""
    hi = min(world.n, lo + CHUNK_ACCOUNTS)
    chunk_ids = ids.slice(lo, hi - lo)
    return {
        "ip_events": ip_events_chunk(_rng(seed, _STREAM["ip_events"], chunk), world,
                                     infra.registry, chunk_ids, lo, hi),
        "payments": payments_chunk(_rng(seed, _STREAM["payments"], chunk), world, infra.cards,
                                   chunk_ids, lo, hi),
        "prompts": prompts_chunk(_rng(seed, _STREAM["prompts"], chunk), world, infra.styles,
                                 chunk_ids, lo, hi),
    }


def _summary(out: Path, scenario: str, seed: int, events_scale: float, world: World,
             rows: dict[str, int], elapsed_s: float) -> SimulationSummary:
    """What was written, counted from the world."""
    names = [cp.spec.name for cp in world.plans]
    return SimulationSummary(
        out_dir=out, scenario=scenario, seed=int(seed), accounts=world.n,
        events_scale=float(events_scale), rows=rows,
        fakes_per_campaign={n: cp.accounts for n, cp in zip(names, world.plans)},
        fleets_per_campaign={n: cp.fleets for n, cp in zip(names, world.plans)},
        labelled_per_campaign=dict(zip(names, labelled_per_campaign(world))),
        lookalikes={kind: int((world.lookalike == k).sum())
                    for k, kind in enumerate(LOOKALIKES) if k},
        company_teams=world.n_teams,
        interactions=int(world.interactions.sum()),
        fake_interactions=int(world.interactions[world.is_fake].sum()),
        elapsed_s=elapsed_s,
    )
