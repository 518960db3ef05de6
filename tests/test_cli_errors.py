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
