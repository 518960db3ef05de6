"""The written tables: contract schemas, determinism, counts, time window, formats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sybilgnn.errors import InputError
from sybilgnn.simulate import WORLD_DAYS, plan_campaigns, get_scenario, simulate_platform
from tests.simulate.measures import TABLE_NAMES

TS = pa.timestamp("us", tz="UTC")
# docs/architecture.md section 1, written out here so the test does not trust the code
CONTRACT = {
    "accounts": [("account_id", pa.string()), ("created_at", TS), ("country", pa.string()),
                 ("plan", pa.string())],
    "ip_events": [("account_id", pa.string()), ("ip", pa.string()), ("timestamp", TS),
                  ("asn", pa.int64()), ("is_datacenter", pa.bool_())],
    "payments": [("account_id", pa.string()), ("instrument_token", pa.string()),
                 ("bin", pa.string()), ("issuer_country", pa.string()),
                 ("is_prepaid", pa.bool_()), ("timestamp", TS)],
    "prompts": [("account_id", pa.string()), ("timestamp", TS), ("text", pa.string())],
    "labels": [("account_id", pa.string()), ("label", pa.int64()), ("source", pa.string()),
               ("labelled_at", TS), ("campaign", pa.string()), ("fleet", pa.string())],
    "ground_truth": [("account_id", pa.string()), ("is_fake", pa.bool_()),
                     ("campaign", pa.string()), ("fleet", pa.string()),
                     ("lookalike", pa.string()), ("team", pa.string())],
}
END = datetime(2026, 10, 1, tzinfo=timezone.utc)


def test_exactly_the_contract_tables_and_schemas(simulated) -> None:
    world = simulated()
    assert sorted(p.name for p in world.dir.iterdir()) == sorted(f"{t}.parquet" for t in CONTRACT)
    for name, columns in CONTRACT.items():
        schema = pq.read_schema(world.dir / f"{name}.parquet")
        assert [(f.name, f.type) for f in schema] == columns, name


def test_same_seed_gives_byte_identical_tables(simulated, tmp_path) -> None:
    first = simulated(seed=5)
    again = simulate_platform(tmp_path / "again", accounts=2000, scenario="medium", seed=5)
    other = simulate_platform(tmp_path / "other", accounts=2000, scenario="medium", seed=6)
    for name in TABLE_NAMES:
        expected = (first.dir / f"{name}.parquet").read_bytes()
        assert (again.out_dir / f"{name}.parquet").read_bytes() == expected, name
        assert (other.out_dir / f"{name}.parquet").read_bytes() != expected, name
    assert again.rows == first.summary.rows


def test_fakes_per_campaign_follow_the_formula(simulated) -> None:
    world = simulated(scenario="hard", accounts=3000)
    plans = plan_campaigns(3000, get_scenario("hard"))
    truth = world["ground_truth"]
    assert len(truth) == len(world["accounts"]) == 3000
    # round(3000 x 0.024) = 72 -> 5.76, 19.44, 46.8 -> 6, 19, 47
    assert world.summary.fakes_per_campaign == {
        "cot_elicitation": 6, "agentic_reasoning": 19, "agentic_coding": 47}
    assert truth[truth.is_fake].groupby("campaign").size().to_dict() == \
        world.summary.fakes_per_campaign
    assert truth[truth.is_fake].groupby("campaign").fleet.nunique().to_dict() == \
        {p.spec.name: p.fleets for p in plans}
    assert truth[~truth.is_fake].campaign.isna().all() and truth[~truth.is_fake].fleet.isna().all()


def test_replacements_come_after_the_creation_burst(simulated) -> None:
    """Originals sign up within burst_hours; replacements after a ban wave, same fleet."""
    for scenario in ("medium", "hydra"):
        world = simulated(scenario=scenario, accounts=5000, events_scale=0.3)
        sc = get_scenario(scenario)
        fakes = world["ground_truth"].merge(world["accounts"], on="account_id")
        fakes = fakes[fakes.is_fake]
        first = fakes.groupby("fleet").created_at.transform("min")
        late = fakes[fakes.created_at >= first + timedelta(hours=sc.burst_hours)]
        expected = {p.spec.name: p.replacements for p in plan_campaigns(5000, sc)}
        assert late.groupby("campaign").size().reindex(expected, fill_value=0).to_dict() == expected


def test_ids_and_raw_values_look_like_a_platform_export(simulated) -> None:
    world = simulated()
    accounts = world["accounts"]
    assert accounts.account_id.str.fullmatch(r"acct-\d{7}").all()
    assert accounts.account_id.is_unique and accounts.account_id.is_monotonic_increasing
    assert accounts.created_at.is_monotonic_increasing          # ids in signup order
    assert set(accounts.plan) <= {"free", "pro", "team", "api"}
    assert accounts.country.str.fullmatch(r"[A-Z]{2}").all()
    ip = world["ip_events"]
    octets = ip.ip.str.split(".", expand=True).astype(int)
    assert octets.shape[1] == 4 and octets.min().min() >= 0 and octets.max().max() <= 255
    pay = world["payments"]
    assert pay.instrument_token.str.fullmatch(r"tok_[0-9a-f]{16}").all()
    assert pay.bin.str.fullmatch(r"\d{6}").all()
    for name in ("ip_events", "payments", "prompts", "labels"):
        assert set(world[name].account_id) <= set(accounts.account_id), name


def test_events_inside_the_window_and_after_signup(simulated) -> None:
    world = simulated()
    start = END - timedelta(days=WORLD_DAYS)
    created = world["accounts"].set_index("account_id").created_at
    assert world["accounts"].created_at.max() < END
    for name, column in (("ip_events", "timestamp"), ("payments", "timestamp"),
                         ("prompts", "timestamp"), ("labels", "labelled_at")):
        table = world[name]
        assert table[column].min() >= start and table[column].max() <= END, name
        assert (table[column].to_numpy() >= created.loc[table.account_id].to_numpy()).all(), name


def test_events_scale_changes_volume_not_population(simulated) -> None:
    full, tenth = simulated(seed=3), simulated(seed=3, events_scale=0.1)
    assert (full.dir / "accounts.parquet").read_bytes() == \
        (tenth.dir / "accounts.parquet").read_bytes()
    assert (full.dir / "ground_truth.parquet").read_bytes() == \
        (tenth.dir / "ground_truth.parquet").read_bytes()
    assert tenth.summary.rows["prompts"] < 0.2 * full.summary.rows["prompts"]


def test_prompts_per_account_are_capped(simulated) -> None:
    from sybilgnn.simulate import PROMPT_CAP

    counts = simulated(seed=3)["prompts"].groupby("account_id").size()
    assert counts.max() == PROMPT_CAP   # the heaviest users reach the cap, none exceed it


def test_bad_arguments_are_input_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="events_scale must be > 0"):
        simulate_platform(tmp_path, accounts=500, scenario="easy", seed=1, events_scale=0)
    (tmp_path / "accounts.csv").write_text("account_id\n")
    with pytest.raises(InputError, match="already holds CSV tables"):
        simulate_platform(tmp_path, accounts=500, scenario="easy", seed=1)
    with pytest.raises(InputError, match="valid scenarios"):
        simulate_platform(tmp_path / "x", accounts=500, scenario="Easy", seed=1)


def test_campaign_interactions_match_the_public_case_per_account(simulated) -> None:
    """Each campaign runs accounts x interactions_per_account (x events_scale), rounded."""
    for scale in (1.0, 0.1):
        world = simulated(seed=3, events_scale=scale)
        plans = plan_campaigns(2000, get_scenario("medium"))
        expected = sum(p.accounts * p.spec.interactions_per_account for p in plans) * scale
        fakes = sum(p.accounts for p in plans)
        assert abs(world.summary.fake_interactions - expected) <= fakes   # per-account rounding
