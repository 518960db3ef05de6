"""Figures logged next to each model: PR curve, score histogram, Optuna study plots.

Model figures use ``matplotlib.figure.Figure`` with the Agg canvas directly, so no GUI
backend is ever touched; Optuna's helpers use pyplot, switched to Agg first.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

__all__ = ["pr_curve_png", "score_histogram_png", "optuna_plot_pngs"]

log = logging.getLogger(__name__)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def pr_curve_png(y_true: np.ndarray, scores: np.ndarray, threshold: float, path: Path,
                 title: str) -> Path | None:
    """Precision-recall curve with the operating threshold marked; None without both classes."""
    if len(np.unique(y_true)) < 2:
        return None
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    ax.plot(recall, precision, lw=1.5,
            label=f"AUPRC {average_precision_score(y_true, scores):.3f}")
    if len(thresholds):
        i = min(int(np.searchsorted(thresholds, threshold)), len(thresholds) - 1)
        ax.scatter([recall[i]], [precision[i]], color="red", zorder=3,
                   label=f"threshold {threshold:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left")
    return _save(fig, path)


def score_histogram_png(y_true: np.ndarray, scores: np.ndarray, threshold: float, path: Path,
                        title: str) -> Path:
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    bins = np.linspace(0, 1, 41)
    for label, name in ((0, "legit"), (1, "fake")):
        ax.hist(scores[y_true == label], bins=bins, alpha=0.6, label=name, log=True)
    ax.axvline(threshold, color="red", ls="--", label="threshold")
    ax.set(xlabel="calibrated score", ylabel="accounts (log)", title=title)
    ax.legend()
    return _save(fig, path)


def optuna_plot_pngs(study: object, folder: Path) -> list[Path]:
    """Optimization history and parameter importances; skipped with a log line if unavailable."""
    out: list[Path] = []
    try:
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm
    except ImportError as exc:  # optional plotting extras missing
        log.warning("optuna plots skipped: %s", exc)
        return out
    plt.switch_backend("Agg")
    plots = {"optuna_history.png": ovm.plot_optimization_history,
             "optuna_importances.png": ovm.plot_param_importances}
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw(study)
            fig = ax.figure if hasattr(ax, "figure") else ax[0].figure
            fig.tight_layout()
            fig.savefig(folder / name, dpi=110)
            plt.close(fig)
            out.append(folder / name)
        except Exception as exc:  # e.g. importances need >1 complete trial / scikit-learn
            log.warning("optuna plot %s skipped: %s", name, exc)
    return out
