"""The CLI's error boundary: failures a user meets print one line and an exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sybilgnn.cli import main
from tests.conftest import free_port


def test_a_server_that_is_down_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                        tmp_path) -> None:
    password = tmp_path / "password"
    password.write_text("secret\n")
    with pytest.raises(SystemExit) as exited:
        main([f"--set=neo4j.uri=bolt://127.0.0.1:{free_port()}", "--set=neo4j.managed=false",
              f"--set=neo4j.password_file={password}", "neo4j", "query", "RETURN 1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Neo4j is not reachable (")
    assert err.rstrip().endswith("start it with `sybilgnn neo4j start` or check neo4j.uri")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_debug_keeps_the_traceback_of_the_same_failure(tmp_path) -> None:
    from neo4j.exceptions import ServiceUnavailable

    password = tmp_path / "password"
    password.write_text("secret\n")
    with pytest.raises(ServiceUnavailable):
        main(["--debug", f"--set=neo4j.uri=bolt://127.0.0.1:{free_port()}",
              "--set=neo4j.managed=false", f"--set=neo4j.password_file={password}",
              "neo4j", "query", "RETURN 1"])


def test_mlflow_and_file_failures_name_what_to_do() -> None:
    from mlflow.exceptions import MlflowException

    from sybilgnn.cli import _third_party_message

    assert _third_party_message(MlflowException("database is locked")) == (
        "MLflow: database is locked; check registry.tracking_uri and that the store is "
        "reachable and not locked by another process")
    denied = PermissionError(13, "Permission denied", "/data/events.parquet")
    assert _third_party_message(denied) == ("permission denied: /data/events.parquet; fix "
                                            "the file's permissions")
    assert _third_party_message(ValueError("a bug")) is None  # bugs keep their traceback


def test_importing_the_package_and_pyg_prints_no_deprecation_notice() -> None:
    done = subprocess.run([sys.executable, "-c", "import sybilgnn, torch_geometric"],
                          capture_output=True, text=True, check=True)
    assert done.stderr == ""


def test_a_new_tracking_store_is_created_without_mlflow_chatter(tmp_path) -> None:
    code = ("import sybilgnn, mlflow; mlflow.set_tracking_uri('sqlite:///store.db'); "
            "print(len(mlflow.search_experiments()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=tmp_path)
    assert (tmp_path / "store.db").exists()
    assert done.stdout == "1\n"  # the store was made (its Default experiment) ...
    assert done.stderr == ""     # ... without "Creating initial MLflow database tables"


def test_python_dash_m_runs_the_same_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "sybilgnn", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("sybilgnn, version ")
    assert done.stderr == ""


def test_changed_and_resume_are_refused_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["score", "--changed", "--resume", "score-20260101T000000-abcdef"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--changed and --resume do not go together" in err and "Traceback" not in err


def test_an_incremental_summary_names_its_base_reach_and_latency(
        capsys: pytest.CaptureFixture[str]) -> None:
    from sybilgnn.cli.score_cmd import _echo_summary
    from sybilgnn.config import load_settings
    from sybilgnn.scoring import ScoringSummary

    summary = ScoringSummary(
        run_id="score-b", model_version="3", threshold=0.9, n_scored=120, n_flagged=7,
        n_fleets=2, resumed=False, export_s=1.0, inference_s=0.5, evidence_s=0.25,
        fleets_s=0.5, write_s=2.0, kind="incremental", base_run_id="score-a", n_seeds=40,
        n_written=9, reach_s=0.75, deliveries=1, ingest_s=3.0, delivery_to_flag_s=8.5)
    _echo_summary(load_settings(None, [], environ={}), summary, as_json=False)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "run score-b (incremental from score-a): model v3, threshold 0.900"
    assert out[1] == ("changed nodes 40, accounts within the model's reach 120, changed score "
                      "or flag 9 (reach found in 0.8s)")
    assert out[-1] == "delivery to flag 8.5s for 1 new deliveries (ingest 3.0s, then this run)"
