"""The registry's promotion lease: one promotion at a time per registered model."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sybilgnn.cli import main
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.registry import (PromotionBusyError, lease_name, log_and_register, promote,
                               promotion_lease)
from sybilgnn.training import train
from tests.registry.stores import make_settings


def _lease_exists(name: str) -> bool:
    return bool(MlflowClient().search_registered_models(filter_string=f"name = '{name}'"))


def test_a_held_lease_keeps_a_promotion_waiting_then_gives_up_naming_the_holder(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, mlflow_uri, ["registry.promotion_wait_s=2"])
    log_and_register(train(tiny_snapshot, settings), tiny_snapshot, settings)
    lease = lease_name(settings)
    assert lease == f"{settings.registry.model_name}.promotion-lease"
    with promotion_lease(settings):
        assert _lease_exists(lease)
        started = time.monotonic()
        with pytest.raises(PromotionBusyError) as err:
            promote(settings, tiny_snapshot)
        assert 2.0 <= time.monotonic() - started < 10
        assert err.value.exit_code == 3
        assert f"lease {lease!r}" in str(err.value) and "nothing was promoted" in str(err.value)
        assert "pid " in str(err.value)  # who holds it
        aliases = MlflowClient().get_registered_model(settings.registry.model_name).aliases
        assert "champion" not in aliases
        overrides = [f"--set=registry.{k}={v}" for k, v in settings.registry.model_dump().items()]
        with pytest.raises(SystemExit) as exited:  # the CLI: one line, exit 3
            main([*overrides, "promote", "--version", "1"])
        assert exited.value.code == 3
        assert "Traceback" not in capsys.readouterr().err
    assert not _lease_exists(lease)  # released at the end of the block
    decision = promote(settings, tiny_snapshot)
    assert (decision.promoted, decision.champion_version) == (True, "1")
    assert not _lease_exists(lease)
    # a later version moved the alias; the operator judges the one that gave up waiting
    log_and_register(train(tiny_snapshot, settings), tiny_snapshot, settings)  # v2
    log_and_register(train(tiny_snapshot, settings), tiny_snapshot, settings)  # v3
    snapshot_dir = tiny_snapshot.save(tmp_path / "snap")
    with pytest.raises(SystemExit) as exited:
        main([*overrides, "promote", "--snapshot", str(snapshot_dir), "--challenger", "2"])
    assert exited.value.code == 10  # same weights as v1: not better
    assert MlflowClient().get_model_version(
        settings.registry.model_name, "2").tags["promotion.compared_with"] == "1"
    assert "promotion.decision" not in MlflowClient().get_model_version(
        settings.registry.model_name, "3").tags
    with pytest.raises(SystemExit) as exited:
        main([*overrides, "promote", "--version", "2", "--challenger", "3"])
    assert exited.value.code == 2


def test_a_waiting_promotion_proceeds_once_the_lease_is_released(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot) -> None:
    settings = make_settings(tmp_path, mlflow_uri, [])
    log_and_register(train(tiny_snapshot, settings), tiny_snapshot, settings)
    results: list[object] = []
    with promotion_lease(settings):
        waiting = threading.Thread(target=lambda: results.append(promote(settings, tiny_snapshot)))
        waiting.start()
        time.sleep(2.5)
        assert waiting.is_alive() and results == []
    waiting.join(60)
    assert [getattr(r, "champion_version", None) for r in results] == ["1"]


def test_a_dead_holders_lease_is_taken_over(
        tmp_path: Path, mlflow_uri: str, tiny_snapshot: Snapshot,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path, mlflow_uri, ["registry.lease_stale_s=60",
                                                    "registry.promotion_wait_s=0"])
    log_and_register(train(tiny_snapshot, settings), tiny_snapshot, settings)
    lease = lease_name(settings)
    MlflowClient().create_registered_model(
        lease, tags={"token": "dead", "holder": "pid 1 on gone", "since": f"{time.time() - 61:.3f}"})
    with caplog.at_level(logging.WARNING, logger="sybilgnn.registry._lease"):
        decision = promote(settings, tiny_snapshot)
    assert decision.promoted and decision.champion_version == "1"
    assert "taking over the promotion lease" in caplog.text and "pid 1 on gone" in caplog.text
    assert not _lease_exists(lease)
    # a live holder (younger than lease_stale_s) is not taken over
    MlflowClient().create_registered_model(
        lease, tags={"token": "live", "holder": "pid 2 on here", "since": f"{time.time():.3f}"})
    with pytest.raises(PromotionBusyError, match="pid 2 on here"):
        promote(settings, tiny_snapshot, version=1)
    assert MlflowClient().get_registered_model(lease).tags["token"] == "live"
