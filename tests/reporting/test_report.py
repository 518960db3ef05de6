"""The HTML report against a real scored graph, and logging it to a real MLflow store."""

from __future__ import annotations

import base64
import html as html_lib
import re
from pathlib import Path
from typing import Any

import pytest

from sybilgnn.config import Settings
from sybilgnn.errors import InputError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.reporting import log_report_to_mlflow, write_report
from tests.reporting.run_history import STATISTICS

pytestmark = pytest.mark.neo4j


def _text_of(page: str, element_id: str) -> str:
    """The text of the element with this id (its inner tags removed, entities decoded)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert match, f"no element {element_id}"
    return _plain_text(match.group(2))


def _plain_text(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", fragment))).strip()


def _table(html: str, element_id: str) -> list[tuple[str, list[str]]]:
    """Rows of the table with this id: (the row's class, its cells' text), header first."""
    match = re.search(rf'<table id="{element_id}">(.*?)</table>', html, re.S)
    assert match, f"no table {element_id}"
    rows = []
    for attrs, body in re.findall(r"<tr([^>]*)>(.*?)</tr>", match.group(1), re.S):
        cls = re.search(r'class="([^"]*)"', attrs)
        cells = [_plain_text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", body, re.S)]
        rows.append((cls.group(1) if cls else "", cells))
    return rows


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

    for account_id, verdict in [("acct-01", "confirmed"), ("acct-02", "confirmed"),
                                ("acct-14", "false_positive")]:
        record_verdict(neo4j_driver, account_id, verdict, "ana", schema=GraphSchema.default())
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


def test_stored_run_statistics_are_what_the_scoring_job_writes() -> None:
    import numpy as np

    from sybilgnn.scoring.job import SCORE_BINS, _run_statistics

    stats = _run_statistics(np.array([0.01, 0.97]), {"account.country": 0.4}, 0.25)
    assert set(stats) == STATISTICS
    assert SCORE_BINS == 20 and len(stats["score_hist"]) == 20


def test_report_shows_the_runs_input_drift_largest_first_with_warnings_marked(
        neo4j_settings: Settings, neo4j_driver: Any, run_history: Any, tmp_path: Path) -> None:
    html = write_report(neo4j_settings, out=tmp_path / "d.html", driver=neo4j_driver).read_text()
    assert "below 0.1 the input is stable, 0.1&ndash;0.25 is a moderate shift, above 0.25 a " \
           "major shift" in html
    assert _text_of(html, "drift-warn-at") == "0.25"
    assert _text_of(html, "drift-summary") == (
        "17 inputs measured, largest PSI 1.156; 2 above 0.25: account.country, "
        "account.f_n_prompts.")
    rows = _table(html, "drift")
    assert rows[0] == ("", ["#", "input", "PSI", "shift", ""])
    warn = "\u26a0 above drift_warn"
    assert rows[1:5] == [
        ("drift-warn", ["1", "account.country", "1.156", "major shift", warn]),
        ("drift-warn", ["2", "account.f_n_prompts", "0.310", "major shift", warn]),
        ("", ["3", "ip.asn", "0.250", "moderate", ""]),          # equal to drift_warn
        ("", ["4", "account.f_age_days", "0.120", "moderate", ""]),
    ]
    # the top 15 only: f_k13 (0.013) down to f_k03 (0.003)
    assert [cells[1:4] for _, cells in rows[5:]] == [
        [f"account.f_k{k:02d}", f"{k / 1000:.3f}", "stable"] for k in range(13, 2, -1)]
    assert len(rows) == 1 + 15
    assert "The 15 largest of 17 inputs" in html
    assert "drift-none" not in html


def test_report_of_a_run_from_before_drift_says_so(
        neo4j_settings: Settings, neo4j_driver: Any, run_history: Any, tmp_path: Path) -> None:
    html = write_report(neo4j_settings, "run-1", out=tmp_path / "o.html",
                        driver=neo4j_driver).read_text()
    assert _text_of(html, "drift-none") == (
        "This run was scored before sybilgnn stored input drift on the ScoringRun: no drift "
        "to show for it.")
    assert _text_of(html, "drift-warn-at") == "0.25"   # the default scoring.drift_warn
    assert '<table id="drift">' not in html
    # recent runs up to run-1: itself and the nine older finished ones, never a running one
    runs = _table(html, "recent-runs")
    assert [cells[1] for _, cells in runs[1:]] == ["run-1"] + [
        f"old-{k:02d}" for k in range(9, 0, -1)]
    assert runs[1] == ("this-run", ["2025-01-01 02:00 UTC", "run-1", "2", "30", "9", "2",
                                    "not recorded"])
    assert "old-running" not in html


def test_report_lists_recent_runs_with_drift_and_score_bands(
        neo4j_settings: Settings, neo4j_driver: Any, run_history: Any, tmp_path: Path) -> None:
    html = write_report(neo4j_settings, out=tmp_path / "h.html", driver=neo4j_driver).read_text()
    runs = _table(html, "recent-runs")
    assert runs[0][1] == ["started", "run", "model version", "scored", "flagged", "fleets",
                          "max input PSI"]
    assert runs[1:] == [
        ("this-run", ["2025-01-08 02:00 UTC", "run-2", "3", "30", "14", "2", "1.156 \u26a0"]),
        ("", ["2025-01-01 02:00 UTC", "run-1", "2", "30", "9", "2", "not recorded"]),
        # old runs warn above 0.3: 0.30 itself is not marked
        ("", ["2024-12-09 02:00 UTC", "old-09", "1", "29", "9", "0", "0.450 \u26a0"]),
        ("", ["2024-12-08 02:00 UTC", "old-08", "1", "28", "8", "2", "0.400 \u26a0"]),
        ("", ["2024-12-07 02:00 UTC", "old-07", "1", "27", "7", "1", "0.350 \u26a0"]),
        ("", ["2024-12-06 02:00 UTC", "old-06", "1", "26", "6", "0", "0.300"]),
        ("", ["2024-12-05 02:00 UTC", "old-05", "1", "25", "5", "2", "0.250"]),
        ("", ["2024-12-04 02:00 UTC", "old-04", "1", "24", "4", "1", "0.200"]),
        ("", ["2024-12-03 02:00 UTC", "old-03", "1", "23", "3", "0", "0.150"]),
        ("", ["2024-12-02 02:00 UTC", "old-02", "1", "22", "2", "2", "0.100"]),
    ]                                      # old-01 is the eleventh: left out
    bands = _table(html, "recent-score-bands")
    assert bands[0][1] == ["run", "0.0\u20130.2", "0.2\u20130.4", "0.4\u20130.6",
                           "0.6\u20130.8", "0.8\u20131.0"]
    by_run = {cells[0]: cells[1:] for _, cells in bands[1:]}
    assert list(by_run) == [cells[1] for _, cells in runs[1:]]
    # run-2: 13, 3, 0, 1 and 13 of 30 accounts
    assert by_run["run-2"] == ["43.3%", "10.0%", "0.0%", "3.3%", "43.3%"]
    assert by_run["run-1"] == ["not recorded"]
    assert by_run["old-09"] == ["31.0%", "0.0%", "0.0%", "0.0%", "69.0%"]   # 9 and 20 of 29
    assert by_run["old-02"] == ["9.1%", "0.0%", "0.0%", "0.0%", "90.9%"]    # 2 and 20 of 22
    # the score histogram, two fleet pictures and the recent runs' distributions
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4
    assert 'alt="score distribution of recent runs"' in html
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)


def test_report_reads_what_a_scoring_run_stores(neo4j_settings: Settings, neo4j_driver: Any,
                                                tmp_path: Path) -> None:
    from sybilgnn.scoring.job import score_snapshot
    from tests.scoring.world import FLAGGED_RUN1, build_graph, build_snapshot, scores_for

    build_graph(neo4j_driver)
    settings = neo4j_settings.model_copy(deep=True)
    settings.scoring.min_fleet_size = 3
    settings.scoring.fleet_max_shared_accounts = 10
    settings.scoring.report_dir = tmp_path / "reports"
    # 10 accounts score 0.90-0.92 (flagged), 10 score 0.10-0.12
    summary = score_snapshot(neo4j_driver, settings, build_snapshot(), scores_for(FLAGGED_RUN1),
                             threshold=0.5, model_version=1,
                             drift={"account.f_ip_count": 0.05, "account.country": 0.8})
    assert summary.drift_warnings == ["account.country (0.80)"]
    html = write_report(settings, out=tmp_path / "e.html", driver=neo4j_driver).read_text()
    assert [(cls, cells[1:4]) for cls, cells in _table(html, "drift")[1:]] == [
        ("drift-warn", ["account.country", "0.800", "major shift"]),
        ("", ["account.f_ip_count", "0.050", "stable"])]
    runs = _table(html, "recent-runs")[1:]
    assert len(runs) == 1 and runs[0][0] == "this-run"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", runs[0][1][0])
    assert runs[0][1][1:] == [summary.run_id, "1", "20", "10", "2", "0.800 \u26a0"]
    assert _table(html, "recent-score-bands")[1][1] == [
        summary.run_id, "50.0%", "0.0%", "0.0%", "0.0%", "50.0%"]
