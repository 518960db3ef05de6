"""``sybilgnn simulate``: a thin verb over simulate_platform, errors without traceback."""

from __future__ import annotations

import pandas as pd
import pytest

from sybilgnn.cli import main


def test_simulate_verb_writes_tables_and_reports(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    main(["simulate", "--accounts", "300", "--scenario", "easy", "--seed", "4",
          "--out", "sim", "--events-scale", "0.2"])
    out = capsys.readouterr().out
    assert "simulated 300 accounts (7 fake) scenario easy seed 4" in out
    assert "cot_elicitation" in out and "agentic_coding" in out
    truth = pd.read_parquet(tmp_path / "sim" / "ground_truth.parquet")
    assert len(truth) == 300 and int(truth.is_fake.sum()) == 7   # round(300 x 0.024)


def test_simulate_defaults_come_from_config(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    main(["--set", "simulate.accounts=200", "--set", "simulate.out_dir=cfg-out",
          "--set", "simulate.events_scale=0.1", "simulate"])
    assert "simulated 200 accounts" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "cfg-out" / "accounts.parquet")) == 200


def test_unknown_scenario_is_one_clear_message(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--accounts", "300", "--scenario", "chaos", "--out", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: unknown scenario 'chaos'; valid scenarios: "
                           "easy, medium, hard, hydra, evasive")
