"""Where the operating point lands against a simulated world's truth, and why.

Trains the configured model as the retrain does (time-split selection, refit on every
label, cross-fitted calibration and threshold), scores every account, and prints the
prevalence the audit estimated against the true one, the threshold rule's inputs, and the
flags' precision and recall (all accounts and accounts without a label) at the chosen
threshold and at alternative rules computed from the same inputs. A measurement for
choosing defaults (on development worlds only), not part of the package.

    .venv/bin/python benchmarks/operating_point.py SNAPSHOT_DIR WORLD_DIR [--set K=V ...]
"""

from __future__ import annotations

import argparse
import math
import re
import time
from typing import Any

import numpy as np

from sybilgnn.config import load_settings
from sybilgnn.data.snapshot import Snapshot
from sybilgnn.evaluation.truth import read_truth
from sybilgnn.training import crossfit
from sybilgnn.training.calibration import apply_calibrator
from sybilgnn.training.companion import companion_features
from sybilgnn.training.inputs import account_labels
from sybilgnn.training.loop import train
from sybilgnn.training.predict import load_model, predict_logits
from sybilgnn.training.refit import refit_on_all_labels


def _pr(flags: np.ndarray, fake: np.ndarray) -> tuple[int, float, float]:
    n = int(flags.sum())
    tp = int((flags & fake).sum())
    return n, (tp / n if n else float("nan")), tp / max(int(fake.sum()), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot")
    parser.add_argument("world")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--dump", help="write the rule's inputs and the truth to this .npz")
    args = parser.parse_args()
    snapshot = Snapshot.load(args.snapshot)
    settings = load_settings(config_file=None, overrides=["train.bootstrap=0", *args.overrides],
                             environ={})
    captured: dict[str, Any] = {}
    original = crossfit.population_threshold

    def spy(pos: np.ndarray, queue: np.ndarray, expected: float, target: float,
            **options: Any) -> dict:
        captured.update(pos=np.asarray(pos), queue=np.asarray(queue), expected=expected,
                        target=target)
        return original(pos, queue, expected, target, **options)

    crossfit.population_threshold = spy
    tick = time.perf_counter()
    selection = train(snapshot, settings)
    final = refit_on_all_labels(snapshot, settings, selection)
    encoded = selection.preprocessor.transform(snapshot)
    gnn = predict_logits(load_model(final.model_config, final.state_dict), encoded, "cpu")
    logits, trees = gnn, None
    if final.companion is not None:
        features = companion_features(encoded)
        logits = final.companion.fuse(gnn, features)
        trees = final.companion.lifted(gnn, features)
    probs = apply_calibrator(final.calibrator, logits)
    labels = account_labels(encoded, "account")
    truth = read_truth(args.world).set_index("account_id")
    fake = truth.loc[encoded.id_maps["account"], "is_fake"].to_numpy().astype(bool)
    unlabelled = labels.y < 0
    info = final.threshold_info
    n = len(fake)
    print(f"trained in {time.perf_counter() - tick:.0f} s; accounts {n}, true prevalence "
          f"{fake.mean():.4f}; used {info['prevalence']:.4f} ({info.get('prevalence_source')})")
    m = re.search(r"\[([0-9.]+), ([0-9.]+)\]", str(info.get("prevalence_source")))
    lo, hi = (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)
    known = labels.known_fakes
    undecided = labels.undecided
    print(f"known fakes {known}; undecided {int(undecided.sum())} of which fake "
          f"{int(fake[undecided].sum())}; expected {captured.get('expected', float('nan')):.0f}")
    if args.dump and captured:
        np.savez(args.dump, pos=captured["pos"], queue=captured["queue"], probs=probs,
                 fake=fake, unlabelled=unlabelled, undecided=undecided, known=known,
                 lo=lo, hi=hi, used=info["prevalence"], target=captured["target"],
                 threshold=final.threshold, y=labels.y, audit=labels.audit, gnn=gnn,
                 trees=trees if trees is not None else np.full_like(gnn, np.nan),
                 logit_threshold=float(np.min(logits[probs >= final.threshold], initial=np.inf)))
    rules = {"chosen": final.threshold}
    if captured:
        for name, prev in (("prev_lo", lo), ("prev_true", float(fake.mean())), ("prev_hi", hi)):
            if prev == prev:
                rules[name] = original(captured["pos"], captured["queue"],
                                       max(prev * n - known, 0.0), captured["target"])["threshold"]
    best = max(np.unique(np.quantile(probs[unlabelled], np.linspace(0.9, 0.999, 400))),
               key=lambda t: (lambda n_, p, r: 2 * p * r / max(p + r, 1e-9))(
                   *_pr(probs[unlabelled] >= t, fake[unlabelled])))
    rules["oracle_f1_unlabelled"] = float(best)
    for name, t in rules.items():
        a = _pr(probs >= t, fake)
        u = _pr((probs >= t) & unlabelled, fake & unlabelled)
        print(f"{name:>22}: t={t:.4f}  all: {a[0]} flags P {a[1]:.3f} R {a[2]:.3f}   "
              f"unlabelled: {u[0]} flags P {u[1]:.3f} R {u[2]:.3f}")
    _lookalikes(truth.loc[encoded.id_maps["account"]], probs >= final.threshold, labels.y,
                {"gnn": apply_calibrator(final.calibrator, gnn) >= final.threshold,
                 **({"trees": apply_calibrator(final.calibrator, trees) >= final.threshold}
                    if trees is not None else {})})


def _lookalikes(truth: Any, flags: np.ndarray, y: np.ndarray,
                by_component: dict[str, np.ndarray]) -> None:
    """Benign look-alikes flagged at the chosen threshold, labelled or not, and which of
    the fused model's components ranked them above it."""
    if "lookalike" not in truth.columns:
        return
    kind = truth["lookalike"].to_numpy().astype(str)
    for name in sorted(set(kind) - {""}):
        member = kind == name
        parts = ", ".join(f"{c} {int((member & hit).sum())}" for c, hit in by_component.items())
        print(f"look-alike {name}: {int(member.sum())} accounts ({int((member & (y == 0)).sum())}"
              f" labelled legit); flagged {int((flags & member).sum())} (of them labelled "
              f"{int((flags & member & (y == 0)).sum())}); above the threshold by: {parts}")


if __name__ == "__main__":
    main()
