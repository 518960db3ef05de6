"""Configuration: layering of file, environment and flags; errors name key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from sybilgnn.config import ConfigError, load_settings


def test_defaults_validate() -> None:
    settings = load_settings(environ={})
    assert settings.neo4j.bolt_port == 7687
    assert settings.registry.tracking_uri == "sqlite:///mlruns/mlflow.db"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("neo4j:\n  bolt_port: 7700\n  http_port: 7701\ntrain:\n  epochs: 5\n")
    settings = load_settings(
        config,
        overrides=["neo4j.http_port=7801"],
        environ={"SYBILGNN__NEO4J__BOLT_PORT": "7800", "SYBILGNN__TRAIN__LR": "0.5"},
    )
    assert (settings.neo4j.bolt_port, settings.neo4j.http_port) == (7800, 7801)
    assert settings.train.epochs == 5 and settings.train.lr == 0.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("neo4j.bolt_port=99999", r"neo4j.bolt_port: .*less than or equal to 65535.*99999"),
        ("neo4j.heap=lots", r"neo4j.heap: .*'lots'"),
        ("train.colour=blue", r"train.colour: unknown key \(value 'blue'\)"),
        ("model.layer_type=mlp", r"model.layer_type: .*'mlp'"),
    ],
)
def test_bad_values_name_key_and_value(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides=[override], environ={})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(bad, environ={})


def test_password_file_missing_says_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"neo4j.password_file={tmp_path / 'pw'}"], environ={})
    with pytest.raises(ConfigError, match="sybilgnn neo4j start"):
        settings.resolved_password()
