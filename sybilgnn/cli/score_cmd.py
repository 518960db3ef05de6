"""``sybilgnn score``: the batch scoring job as a thin verb over ``run_scoring``."""

from __future__ import annotations

import json
from typing import Any

import click
from tqdm import tqdm

from sybilgnn.cli.common import cli, pass_settings
from sybilgnn.config import Settings


@cli.command("score")
@click.option("--version", "model_version", default=None, metavar="N|ALIAS",
              help="Registered model version or alias (default: scoring.model_alias).")
@click.option("--resume", "resume_run_id", default=None, metavar="RUN_ID",
              help="Finish this unfinished ScoringRun (default: resume the latest unfinished "
                   "run of the same model on the same snapshot, if scoring.auto_resume).")
@click.option("--changed", is_flag=True,
              help="Score only the accounts that deliveries since the last finished run can "
                   "have changed (the model's reach around every node an ingest touched); "
                   "scores the whole graph when there is no finished run of this model.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_settings
def score(settings: Settings, model_version: str | None, resume_run_id: str | None,
          changed: bool, as_json: bool) -> None:
    """Score every account (or, with --changed, what changed) with the champion model and
    write scores, flags, fleets and evidence back to Neo4j."""
    from sybilgnn.scoring import run_scoring
    from sybilgnn.scoring.incremental_run import FullRunNeeded, score_changed

    if changed and resume_run_id is not None:
        raise click.UsageError("--changed and --resume do not go together: an incremental "
                               "run is never resumed, the next one covers it")
    if changed:
        try:
            _echo_summary(settings, score_changed(settings, model_version=model_version),
                          as_json)
            return
        except FullRunNeeded as reason:
            if not as_json:
                click.echo(f"{reason}: scoring the whole graph instead")

    bar: tqdm | None = None

    def on_batch(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done - 1, desc="write", unit="batch",
                       disable=as_json)
        bar.update(1)

    try:
        summary = run_scoring(settings, model_version=model_version,
                              resume_run_id=resume_run_id, on_batch=on_batch,
                              progress=not as_json)
    finally:
        if bar is not None:
            bar.close()
    _echo_summary(settings, summary, as_json)


def _echo_summary(settings: Settings, summary: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
        return
    kind = (f" (incremental from {summary.base_run_id})" if summary.kind == "incremental"
            else " (resumed)" if summary.resumed else "")
    click.echo(f"run {summary.run_id}{kind}: model "
               f"v{summary.model_version}, threshold {summary.threshold:.3f}")
    if summary.kind == "incremental":
        click.echo(f"changed nodes {summary.n_seeds:,}, accounts within the model's reach "
                   f"{summary.n_scored:,}, changed score or flag {summary.n_written:,} "
                   f"(reach found in {summary.reach_s:.1f}s)")
    click.echo(f"scored {summary.n_scored:,}  flagged {summary.n_flagged:,}  "
               f"fleets {summary.n_fleets:,}")
    if summary.n_label_conflicts:
        click.echo(f"not flagged because a label or verdict says legitimate: "
                   f"{summary.n_label_conflicts:,} (Browser query 'label_conflicts')")
    click.echo(f"export {summary.export_s:.1f}s  inference {summary.inference_s:.1f}s  "
               f"evidence {summary.evidence_s:.1f}s  fleets {summary.fleets_s:.1f}s  "
               f"write {summary.write_s:.1f}s")
    if summary.deliveries:
        click.echo(f"delivery to flag {summary.delivery_to_flag_s:.1f}s for "
                   f"{summary.deliveries} new deliveries (ingest {summary.ingest_s:.1f}s, then "
                   "this run)")
    if summary.drift_warnings:
        click.echo(f"warning: inputs shifted from the training data (PSI above "
                   f"scoring.drift_warn {settings.scoring.drift_warn}): "
                   f"{', '.join(summary.drift_warnings[:8])}", err=True)
