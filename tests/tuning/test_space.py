"""Search-space YAML: the shipped files parse; mistakes fail with the file and parameter named."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from sybilgnn.errors import InputError
from sybilgnn.tuning import DEFAULT_SPACE_FILE, TUNABLE_PARAMS, load_search_space

REPO = Path(__file__).resolve().parents[2]


def test_shipped_spaces_cover_every_tunable_parameter() -> None:
    for path in (DEFAULT_SPACE_FILE, REPO / "training" / "search_space.yaml"):
        space = load_search_space(path)
        assert sorted(space.names()) == sorted(TUNABLE_PARAMS)


def test_suggest_draws_within_bounds_and_is_seeded(tmp_path: Path) -> None:
    file = tmp_path / "space.yaml"
    file.write_text("hidden: {type: int, low: 8, high: 32, step: 8}\n"
                    "lr: {type: log, low: 1.0e-4, high: 1.0e-1}\n"
                    "dropout: {type: float, low: 0.0, high: 0.5}\n"
                    "aggr: {type: categorical, choices: [mean, max]}\n")
    space = load_search_space(file)
    draws = []
    for _ in range(2):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3))
        trial = study.ask()
        draws.append(space.suggest(trial))
    assert draws[0] == draws[1]
    params = draws[0]
    assert params["hidden"] in (8, 16, 24, 32)
    assert 1e-4 <= params["lr"] <= 1e-1 and 0 <= params["dropout"] <= 0.5
    assert params["aggr"] in ("mean", "max")


@pytest.mark.parametrize("text, message", [
    ("hiden: {type: int, low: 1, high: 2}", "parameter 'hiden': unknown parameter"),
    ("hidden: {type: integer, low: 1, high: 2}", "'type' must be one of int, float, log"),
    ("hidden: {type: int, low: 9, high: 2}", "low (9.0) is above high (2.0)"),
    ("hidden: {type: int, low: 1.5, high: 2}", "whole-number"),
    ("lr: {type: log, low: 0, high: 0.1}", "a log range needs low > 0"),
    ("lr: {type: log, low: 0.001, high: 0.1, step: 0.01}", "a log range takes no 'step'"),
    ("aggr: {type: categorical, choices: []}", "'choices' must be a non-empty list"),
    ("aggr: {type: categorical, choices: [mean], low: 1}", "unexpected key(s) low"),
    ("dropout: {type: float, low: zero, high: 0.5}", "'low' must be a number"),
    ("dropout: 0.5", "expected a mapping"),
    ("- hidden", "expected a non-empty mapping"),
])
def test_invalid_spaces_name_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text + "\n")
    with pytest.raises(InputError) as err:
        load_search_space(file)
    assert message in str(err.value)
    assert str(file) in str(err.value)


def test_missing_file_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="tune.search_space"):
        load_search_space(tmp_path / "nope.yaml")
