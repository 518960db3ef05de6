"""``sybilgnn score``: the batch scoring job as a thin verb over ``run_scoring``."""

from __future__ import annotations

import json

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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_settings
def score(settings: Settings, model_version: str | None, resume_run_id: str | None,
          as_json: bool) -> None:
    """Score every account with the champion model and write scores, flags, fleets and
    evidence back to Neo4j."""
    from sybilgnn.scoring import run_scoring

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
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
        return
    click.echo(f"run {summary.run_id}{' (resumed)' if summary.resumed else ''}: model "
               f"v{summary.model_version}, threshold {summary.threshold:.3f}")
    click.echo(f"scored {summary.n_scored:,}  flagged {summary.n_flagged:,}  "
               f"fleets {summary.n_fleets:,}")
    if summary.n_label_conflicts:
        click.echo(f"not flagged because a label or verdict says legitimate: "
                   f"{summary.n_label_conflicts:,} (Browser query 'label_conflicts')")
    click.echo(f"export {summary.export_s:.1f}s  inference {summary.inference_s:.1f}s  "
               f"evidence {summary.evidence_s:.1f}s  fleets {summary.fleets_s:.1f}s  "
               f"write {summary.write_s:.1f}s")
    if summary.drift_warnings:
        click.echo(f"warning: inputs shifted from the training data (PSI above "
                   f"scoring.drift_warn {settings.scoring.drift_warn}): "
                   f"{', '.join(summary.drift_warnings[:8])}", err=True)
