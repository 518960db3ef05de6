"""The scoring run report: one self-contained HTML file, optionally logged to MLflow."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sybilgnn.config import Settings
from sybilgnn.errors import SybilgnnError
from sybilgnn.graph_schema import GraphSchema
from sybilgnn.reporting.data import SCORE_BANDS, RecentRun, ReportData, collect_report_data
from sybilgnn.reporting.figures import fleet_graph_png, recent_scores_png, score_histogram_png

__all__ = ["render_report_html", "write_report", "log_report_to_mlflow"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} .meta{color:#666}
.cards{display:flex;gap:1em;margin:1em 0} .card{border:1px solid #ddd;border-radius:6px;
padding:.8em 1.4em;min-width:9em} .card .n{font-size:2em;font-weight:600}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.3em .7em;
text-align:left} th{background:#f5f5f5} .fleets{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #eee;padding:.4em} .muted{color:#888}
td.num{text-align:right} .drift-warn{background:#fdecea;color:#b71c1c;font-weight:600}
"""
_DRIFT_SHOWN = 15  # inputs listed in the drift table, largest PSI first
_WARN_MARK = "\u26a0 above drift_warn"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _img(png_base64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{png_base64}">'


def _changes_html(data: ReportData) -> str:
    changes = data.changes
    if changes.previous_run_id is None:
        intro = "<p>First scoring run: nothing to compare with.</p>"
    else:
        intro = f"<p>Compared with run <code>{_e(changes.previous_run_id)}</code>.</p>"

    def fleet_list(ids: list[str]) -> str:
        return ", ".join(f"<code>{_e(i)}</code>" for i in ids) or '<span class="muted">none</span>'

    def count(value: int | None) -> str:
        if value is not None:
            return str(value)
        return ('<span class="muted">unknown (only kept for the latest run, from '
                'prev_sybil_flag)</span>')

    return f"""{intro}
<table>
<tr><th>new fleets</th><td id="new-fleets">{fleet_list(changes.new_fleets)}</td></tr>
<tr><th>disappeared fleets</th><td id="gone-fleets">{fleet_list(changes.gone_fleets)}</td></tr>
<tr><th>newly flagged accounts</th><td id="newly-flagged">{count(changes.newly_flagged)}</td></tr>
<tr><th>no longer flagged</th><td id="unflagged">{count(changes.unflagged)}</td></tr>
</table>"""


def _shift(psi: float) -> str:
    """The usual reading of a PSI value."""
    if psi < 0.1:
        return "stable"
    return "moderate" if psi <= 0.25 else "major shift"


def _drift_html(data: ReportData) -> str:
    drift = data.drift
    intro = (
        "<p>The population stability index (PSI) compares the distribution of each model "
        "input in this run with the training snapshot the model's preprocessing was fitted "
        "on: below 0.1 the input is stable, 0.1&ndash;0.25 is a moderate shift, above 0.25 a "
        "major shift. Inputs above this run's warning level (<code>scoring.drift_warn</code> "
        f'= <span id="drift-warn-at">{drift.warn_at:g}</span>) are marked; scores that rest on '
        "them deserve a look, and a retrain on current data usually helps.</p>")
    if not drift.recorded:
        return intro + ('<p id="drift-none" class="muted">This run was scored before sybilgnn '
                        "stored input drift on the ScoringRun: no drift to show for it.</p>")
    if not drift.inputs:
        return intro + ('<p id="drift-none" class="muted">No model input was measured for '
                        "this run.</p>")
    above = drift.above()
    summary = (f'<p id="drift-summary">{len(drift.inputs)} inputs measured, largest PSI '
               f"{drift.inputs[0][1]:.3f}; {len(above)} above {drift.warn_at:g}"
               + (": " + ", ".join(f"<code>{_e(n)}</code>" for n in above) if above else "")
               + ".</p>")
    marked = ' class="drift-warn"'
    rows = "\n".join(
        f'<tr{marked if psi > drift.warn_at else ""}><td>{rank}</td>'
        f'<td><code>{_e(name)}</code></td><td class="num">{psi:.3f}</td><td>{_shift(psi)}</td>'
        f'<td>{_WARN_MARK if psi > drift.warn_at else ""}</td></tr>'
        for rank, (name, psi) in enumerate(drift.inputs[:_DRIFT_SHOWN], start=1))
    more = (f'<p class="muted">The {_DRIFT_SHOWN} largest of {len(drift.inputs)} inputs; the '
            "ScoringRun's <code>drift_inputs</code> and <code>drift_psi</code> hold all.</p>"
            if len(drift.inputs) > _DRIFT_SHOWN else "")
    return f"""{intro}
{summary}
<table id="drift">
<tr><th>#</th><th>input</th><th>PSI</th><th>shift</th><th></th></tr>
{rows}
</table>
{more}"""


_NOT_RECORDED = '<span class="muted">not recorded</span>'


def _recent_runs_html(data: ReportData) -> str:
    runs = data.recent_runs
    if not runs:
        return '<p id="recent-none" class="muted">No finished scoring run up to this one.</p>'
    this_run = data.run.get("run_id")
    figure = (_img(recent_scores_png(runs), "score distribution of recent runs")
              if any(r.bin_shares() is not None for r in runs) else "")
    return f"""<p>The last {len(runs)} finished scoring runs up to this one, newest first.
Max input PSI: the largest drift of any model input in that run (marked above its
<code>scoring.drift_warn</code>).</p>
<table id="recent-runs">
<tr><th>started</th><th>run</th><th>model version</th><th>scored</th><th>flagged</th>
<th>fleets</th><th>max input PSI</th></tr>
{_recent_run_rows(runs, this_run)}
</table>
<p>Score distribution per run: share of the scored accounts in each score band (from the
run's stored histogram, <code>score_hist</code>).</p>
<table id="recent-score-bands">
<tr><th>run</th>{_band_heads()}</tr>
{_recent_band_rows(runs, this_run)}
</table>
{figure}"""


def _row_attrs(run_id: str, this_run: str | None) -> str:
    """Marks the report's own run among the recent ones."""
    return ' class="this-run"' if run_id == this_run else ""


def _recent_run_rows(runs: list[RecentRun], this_run: str | None) -> str:
    """One row per recent run: counts and its largest input drift, marked above the run's
    own warning level (a run from before drift was stored says so)."""
    def drift_cell(run_max: float | None, warn_at: float) -> str:
        if run_max is None:
            return f'<td class="num">{_NOT_RECORDED}</td>'
        if run_max > warn_at:
            return f'<td class="num drift-warn">{run_max:.3f} \u26a0</td>'
        return f'<td class="num">{run_max:.3f}</td>'

    def count(value: int | None) -> str:
        return f'<td class="num">{"" if value is None else value}</td>'

    return "\n".join(
        f"<tr{_row_attrs(r.run_id, this_run)}><td>{_e(r.started_at)}</td>"
        f"<td><code>{_e(r.run_id)}</code></td>"
        f"<td>{_e(r.model_version)}</td>{count(r.n_scored)}{count(r.n_flagged)}"
        f"{count(r.n_fleets)}{drift_cell(r.drift_max, r.drift_warn)}</tr>"
        for r in runs)


def _band_heads() -> str:
    width = 1 / SCORE_BANDS
    return "".join(f"<th>{i * width:.1f}&ndash;{(i + 1) * width:.1f}</th>"
                   for i in range(SCORE_BANDS))


def _recent_band_rows(runs: list[RecentRun], this_run: str | None) -> str:
    """One row per recent run: its share of accounts in each score band, so a shift in the
    score distribution shows from run to run."""
    def band_cells(shares: list[float] | None) -> str:
        if shares is None:
            return f'<td colspan="{SCORE_BANDS}">{_NOT_RECORDED}</td>'
        return "".join(f'<td class="num">{100 * s:.1f}%</td>' for s in shares)

    return "\n".join(
        f"<tr{_row_attrs(r.run_id, this_run)}><td><code>{_e(r.run_id)}</code></td>"
        f"{band_cells(r.band_shares())}</tr>" for r in runs)


def _histogram_html(data: ReportData) -> str:
    """This run's score histogram, or why it is gone (a later run overwrote the scores)."""
    if not data.scores:
        return ('<p class="muted">Scores of this run are no longer in the graph (a later '
                'run overwrote them).</p>')
    return _img(score_histogram_png(data.scores, data.run.get("threshold")), "score distribution")


def _fleets_html(data: ReportData) -> str:
    """The top fleets' table (with a column per shared-node count) and their pictures."""
    counted = data.fleet_counts
    shared_heads = "".join(
        f"<th>shared {_e(name.removeprefix('n_shared_').replace('_', ' '))}</th>"
        for name in counted)
    rows = "\n".join(
        f"<tr><td><code>{_e(f.fleet_id)}</code></td><td>{f.size}</td>"
        f"<td>{_num(f.mean_score)}</td>"
        + "".join(f"<td>{_e(f.shared.get(name))}</td>" for name in counted)
        + f"<td>{_e(f.first_seen)}</td></tr>"
        for f in data.fleets)
    pictures = "\n".join(
        f"<figure>{_img(fleet_graph_png(f.graph, f'{f.fleet_id}: {f.size} accounts'), f.fleet_id)}"
        f"<figcaption>{_e(f.fleet_id)}: {len(f.graph.nodes)} nodes, "
        f"{len(f.graph.edges)} relationships</figcaption></figure>"
        for f in data.fleets if f.graph is not None)
    return f"""<table><tr><th>fleet</th><th>size</th><th>mean score</th>{shared_heads}
<th>first seen</th></tr>
{rows}
</table>
<div class="fleets">
{pictures}
</div>"""


def render_report_html(data: ReportData) -> str:
    """The report page for collected data; pictures are embedded as base64 PNG."""
    run = data.run
    threshold = run.get("threshold")
    verdicts = ", ".join(f"{_e(k)}: {v}" for k, v in sorted(data.verdicts.items())) or "none yet"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sybilgnn scoring report {_e(run.get('run_id'))}</title><style>{_CSS}</style></head>
<body>
<h1>Scoring run <code>{_e(run.get('run_id'))}</code></h1>
<p class="meta">model version {_e(run.get('model_version'))} · threshold {_e(threshold)} ·
started {_e(run.get('started_at'))} · finished {_e(run.get('finished_at'))} ·
status {_e(run.get('status'))} · report generated {generated}</p>
<div class="cards">
<div class="card"><div class="n" id="n-scored">{data.n_scored}</div>accounts scored</div>
<div class="card"><div class="n" id="n-flagged">{data.n_flagged}</div>accounts flagged</div>
<div class="card"><div class="n" id="n-fleets">{data.n_fleets}</div>fleets</div>
</div>
<h2>Score distribution</h2>
{_histogram_html(data)}
<h2>Top fleets</h2>
{_fleets_html(data)}
<h2>Changes since the previous run</h2>
{_changes_html(data)}
<h2>Input drift</h2>
{_drift_html(data)}
<h2>Recent runs</h2>
{_recent_runs_html(data)}
<h2>Analyst verdicts</h2>
<p id="verdicts">{verdicts}</p>
<p class="muted">Open a fleet in Neo4j Browser with the sybilgnn guide
(<code>sybilgnn guide</code>) and the fleet subgraph query.</p>
</body></html>
"""


def write_report(settings: Settings, run_id: str | None = None, out: str | Path | None = None,
                 *, driver: Any = None, top_fleets: int = 10, fleet_pictures: int = 5) -> Path:
    """Write the HTML report of one scoring run (default: the latest) and return its path.

    ``out`` defaults to ``scoring.report_dir/report-<run_id>.html``.
    """
    from sybilgnn.neo4j.connection import open_driver

    own_driver = driver is None
    active = open_driver(settings) if own_driver else driver
    try:
        # properties such as `review` may not exist yet: no warnings for that
        with active.session(database=settings.neo4j.database,
                            notifications_min_severity="OFF") as session:
            data = collect_report_data(session, run_id, top_fleets=top_fleets,
                                       fleet_pictures=fleet_pictures,
                                       schema=GraphSchema.from_settings(settings))
    finally:
        if own_driver:
            active.close()
    path = Path(out) if out is not None else (
        settings.scoring.report_dir / f"report-{data.run['run_id']}.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report_html(data), encoding="utf-8")
    return path


def log_report_to_mlflow(path: str | Path, run_id: str | None = None, *,
                         tracking_uri: str | None = None,
                         artifact_path: str = "reports") -> bool:
    """Log the report as an artifact of MLflow run ``run_id`` or of the active run.

    Returns False (and logs nothing) when no run is given and none is active.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    report = Path(path)
    if not report.is_file():
        raise SybilgnnError(f"report {report} does not exist; write it first (sybilgnn report)")
    if run_id is not None:
        MlflowClient(tracking_uri=tracking_uri).log_artifact(run_id, str(report), artifact_path)
        return True
    if mlflow.active_run() is None:
        return False
    mlflow.log_artifact(str(report), artifact_path)
    return True
