"""One forest plot per outcome: the primary effect next to every sensitivity analysis."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import apply_style, plain_log_ticks
from pnitrial.report.numbers import MINUS, effect_text, p_text


def sensitivity_forest(table: pd.DataFrame, meta: Trial, key: str, alpha: float = 0.05) -> plt.Figure:
    """Forest plot of one outcome's sensitivity analyses: estimate and CI of each, ratios for log outcomes.

    The primary analysis (first row) is black; an analysis without an estimate shows its status.
    Effects are printed to three significant digits with p in APA style.

    Parameters
    ----------
    table : DataFrame
        The sensitivity table: ``outcome``, ``analysis``, ``estimate``, ``ci_low``, ``ci_high``,
        ``p`` and ``status``, the primary analysis first for each outcome.
    meta : Trial
        The trial, for the outcome's label, unit and transform.
    key : str
        The outcome.
    alpha : float, optional
        Sets the CI level in the axis label.

    Returns
    -------
    Figure

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"), outcomes=(pain,))
    >>> table = pd.DataFrame({"outcome": "pain", "analysis": ["primary", "complete cases", "multiple imputation"],
    ...                       "estimate": [-1.5, -1.4, np.nan], "ci_low": [-2.9, -2.9, np.nan],
    ...                       "ci_high": [-0.1, 0.1, np.nan], "p": [0.04, 0.07, np.nan],
    ...                       "status": ["ok", "ok", "failed: too few rows"]})
    >>> fig = sensitivity_forest(table, meta, "pain")
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['primary', 'complete cases', 'multiple imputation']
    >>> plt.close(fig)
    """
    apply_style()
    outcome = meta.outcome(key)
    rows = table[table["outcome"] == key].reset_index(drop=True)
    # log outcomes as ratios, like the main forest plot and the tables
    show = (lambda x: math.exp(x)) if outcome.is_log else (lambda x: x)
    fig, ax = plt.subplots(figsize=(7.2, 1.1 + 0.34 * max(len(rows), 1)), layout="constrained")
    for y, r in rows.iterrows():
        colour = "black" if y == 0 else "#555555"
        if pd.isna(r["estimate"]) or pd.isna(r["ci_low"]):
            ax.annotate(str(r["status"]), xy=(0.0, y), xycoords=("axes fraction", "data"), va="center", fontsize=7)
            continue
        est, lo, hi = show(r["estimate"]), show(r["ci_low"]), show(r["ci_high"])
        ax.plot([lo, hi], [y, y], color=colour, lw=1.3 if y == 0 else 0.9)
        ax.plot(est, y, "o" if y == 0 else "s", ms=5, color=colour, linestyle="none")
        p = p_text(r["p"])
        ax.annotate(
            effect_text(est, lo, hi, minus=MINUS) + (f", {p}" if p else ""),
            xy=(1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=7,
        )
    ax.axvline(1.0 if outcome.is_log else 0.0, color="grey", lw=0.8, ls="--")
    if outcome.is_log:
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
    ax.set_yticks(np.arange(len(rows)), list(rows["analysis"]), fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    a, c = meta.arms["intervention"], meta.arms["control"]
    measure = (
        f"ratio of change, {a} / {c}" if outcome.is_log else f"difference in change, {a} \u2212 {c} ({outcome.unit})"
    )
    ax.set_xlabel(f"{outcome.label}: {measure}, to {meta.visits[-1]} ({1 - alpha:.0%} CI)")
    return fig
