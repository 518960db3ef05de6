"""Coverage and width of the audit's prevalence interval: the normal one against the
post-stratified exact one (``sybilgnn.measures.population.audit_prevalence``).

A Monte Carlo over synthetic populations, each drawn afresh: ``--accounts`` accounts, a
share ``prevalence`` of them fake. Investigations label a share of the fakes (40 %; 60 %
in the last setting, which mimics the world of issue 15: 2.4 % fakes, recall 0.78 among
the unlabelled, 8 fakes in an audit of 1,000) and 2 % of the legitimate accounts; the
audit is a uniform sample of the rest, without replacement. The
model's probabilities: legitimate accounts Beta(0.3, 150) (mean 0.002), 1 % of them
look-alikes at Beta(1.5, 4) (mean 0.27); a fake is found with probability ``recall`` and
then scores Beta(8, 1.5) (mean 0.84); a missed fake scores like a legitimate account, so
its residual is near 1. Every population is audited at each size. Printed per setting:
the share of draws whose interval holds the true share of fakes (coverage), the mean
width, and the mean error of each point estimate, in percentage points.

    .venv/bin/python benchmarks/audit_interval.py [--reps 400] [--accounts 200000] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np

from sybilgnn.measures.population import audit_prevalence

# (prevalence, model recall, share of the fakes labelled)
SETTINGS = [*((prevalence, recall, 0.4) for prevalence, recall
              in itertools.product((0.01, 0.02, 0.04), (0.7, 0.85, 1.0))), (0.024, 0.78, 0.6)]
AUDITS = (500, 1000, 2000)


def population(rng: np.random.Generator, accounts: int, prevalence: float, recall: float,
               labelled: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted, y, fake): the model's probabilities, the labels (-1 none), the truth."""
    fake = rng.random(accounts) < prevalence
    predicted = rng.beta(0.3, 150.0, accounts)
    look_alike = rng.random(accounts) < 0.01
    predicted[look_alike] = rng.beta(1.5, 4.0, int(look_alike.sum()))
    found = fake & (rng.random(accounts) < recall)
    predicted[found] = rng.beta(8.0, 1.5, int(found.sum()))
    known = rng.random(accounts) < np.where(fake, labelled, 0.02)
    y = np.where(known, fake.astype(np.int64), -1)
    return predicted, y, fake


def normal_interval(predicted: np.ndarray, y: np.ndarray, audit_y: np.ndarray
                    ) -> tuple[float, float, float]:
    """The earlier interval: the difference estimator with a normal interval of the
    audit's mean residual."""
    rest, audited = y < 0, audit_y >= 0
    residual = audit_y[audited] - predicted[audited]
    share = float(predicted[rest].mean() + residual.mean())
    half = 1.96 * float(residual.std(ddof=1)) / math.sqrt(residual.size)
    known, n_rest, n = float((y == 1).sum()), float(rest.sum()), float(y.size)

    def total(s: float) -> float:
        return (known + n_rest * min(max(s, 0.0), 1.0)) / n

    return total(share), total(share - half), total(share + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400, help="populations per setting")
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print("| prevalence | recall | fakes labelled | audit | fakes in audit (mean) | normal: "
          "coverage | width | error | post-stratified exact: coverage | width | error | "
          "width ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 1.0
    for prevalence, recall, labelled in SETTINGS:
        rows: dict[int, list[tuple[float, ...]]] = {n: [] for n in AUDITS}
        for _ in range(args.reps):
            predicted, y, fake = population(rng, args.accounts, prevalence, recall,
                                               labelled)
            truth = float(fake.mean())
            frame = np.flatnonzero(y < 0)
            for n in AUDITS:
                audit_y = np.full(y.size, -1)
                drawn = rng.choice(frame, n, replace=False)
                audit_y[drawn] = fake[drawn]
                cells: list[float] = [float(fake[drawn].sum())]
                for estimate, lo, hi in (normal_interval(predicted, y, audit_y),
                                         audit_prevalence(predicted, y, audit_y)):
                    cells += [float(lo <= truth <= hi), hi - lo, estimate - truth]
                rows[n].append(tuple(cells))
        for n in AUDITS:
            m = np.asarray(rows[n]).mean(axis=0)
            worst = min(worst, float(m[4]))
            print(f"| {prevalence:.3f} | {recall:.2f} | {labelled:.1f} | {n} | {m[0]:.1f} | "
                  f"{m[1]:.3f} | {100 * m[2]:.2f} | {100 * m[3]:+.3f} | {m[4]:.3f} | "
                  f"{100 * m[5]:.2f} | {100 * m[6]:+.3f} | {m[5] / m[2]:.2f} |", flush=True)
    print(f"\n{args.reps} populations of {args.accounts} accounts per setting, seed "
          f"{args.seed}; widths and errors in percentage points; lowest coverage of the "
          f"post-stratified interval {worst:.3f}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
