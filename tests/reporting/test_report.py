"""The HTML report against a real scored graph, and logging it to a real MLflow store."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.reporting import log_report_to_mlflow, write_report

pytestmark = pytest.mark.neo4j


def _text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">(.*?)</', html, re.S)
    assert match, f"no element {element_id}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_report_of_latest_run_holds_exact_counts_fleets_and_images(
        neo4j_settings: Settings, neo4j_driver: Any, scored_graph: Any, tmp_path: Path) -> None:
    out = write_report(neo4j_settings, out=tmp_path / "r.html", driver=neo4j_driver)
    html = out.read_text()
    assert "Scoring run <code>run-2</code>" in html
    assert _text_of(html, "n-scored") == "30"
    assert _text_of(html, "n-flagged") == "14"
    assert _text_of(html, "n-fleets") == "2"
    # fleets table, largest first, with the inactive fleet left out
    table_ids = re.findall(r"<tr><td><code>(F-\d+)</code></td><td>(\d+)</td>", html)
    assert table_ids == [("F-0001", "8"), ("F-0002", "5")]
    assert "F-0001: 12 nodes, 35 relationships" in html
    assert "F-0002: 9 nodes, 20 relationships" in html
    # changes since run-1
    assert _text_of(html, "new-fleets") == "F-0002"
    assert _text_of(html, "gone-fleets") == "F-0000"
    assert _text_of(html, "newly-flagged") == "6"
    assert _text_of(html, "unflagged") == "1"
    # histogram + two fleet pictures, all real PNGs embedded
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert "http://" not in html.replace("http://www.w3.org", "")  # self-contained


def test_report_of_previous_run_and_default_path(neo4j_settings: Settings, neo4j_driver: Any,
                                                 scored_graph: Any, tmp_path: Path) -> None:
    settings = neo4j_settings.model_copy(deep=True)
    settings.scoring.report_dir = tmp_path / "reports"
    out = write_report(settings, "run-1", driver=neo4j_driver)
    assert out == tmp_path / "reports" / "report-run-1.html"
    html = out.read_text()
    assert _text_of(html, "n-flagged") == "9"       # stored on (:ScoringRun {run_id:'run-1'})
    assert re.findall(r"<tr><td><code>(F-\d+)</code>", html) == ["F-0001", "F-0000"]
    assert "First scoring run" in html
    assert "no longer in the graph" in html          # later run overwrote its scores


def test_report_names_an_unknown_run(neo4j_settings: Settings, neo4j_driver: Any,
                                     scored_graph: Any, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'run-9' is not in the graph"):
        write_report(neo4j_settings, "run-9", out=tmp_path / "x.html", driver=neo4j_driver)


def test_report_counts_verdicts(neo4j_settings: Settings, neo4j_driver: Any,
                                scored_graph: Any, tmp_path: Path) -> None:
    from sybilgnn.browser import record_verdict

    record_verdict(neo4j_driver, "acct-01", "confirmed", "ana")
    record_verdict(neo4j_driver, "acct-02", "confirmed", "ana")
    record_verdict(neo4j_driver, "acct-14", "false_positive", "ana")
    html = write_report(neo4j_settings, out=tmp_path / "v.html", driver=neo4j_driver).read_text()
    assert _text_of(html, "verdicts") == "confirmed: 2, false_positive: 1"


def test_log_report_to_mlflow(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = tmp_path / "report-run-2.html"
    report.write_text("<html>report</html>")
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("reports", artifact_location=str(tmp_path / "art"))
    try:
        assert log_report_to_mlflow(report) is False       # no active run, none given
        with mlflow.start_run(experiment_id=experiment) as active:
            assert log_report_to_mlflow(report) is True
        other = MlflowClient(uri).create_run(experiment).info.run_id
        assert log_report_to_mlflow(report, other, tracking_uri=uri) is True
        for run_id in (active.info.run_id, other):
            listed = [a.path for a in MlflowClient(uri).list_artifacts(run_id, "reports")]
            assert listed == ["reports/report-run-2.html"]
    finally:
        mlflow.set_tracking_uri(previous_uri)
