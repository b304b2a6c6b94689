"""One forest plot per outcome: the primary effect next to every sensitivity analysis."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import apply_style


def sensitivity_forest(table: pd.DataFrame, meta: Trial, key: str, alpha: float = 0.05) -> plt.Figure:
    """Estimate and CI of each analysis on the model scale; the primary row in black, failures named."""
    apply_style()
    outcome = meta.outcome(key)
    rows = table[table["outcome"] == key].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.2, 1.1 + 0.34 * max(len(rows), 1)), layout="constrained")
    for y, r in rows.iterrows():
        colour = "black" if y == 0 else "#555555"
        if pd.isna(r["estimate"]) or pd.isna(r["ci_low"]):
            ax.annotate(str(r["status"]), xy=(0.0, y), xycoords=("axes fraction", "data"), va="center", fontsize=7)
            continue
        ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=colour, lw=1.3 if y == 0 else 0.9)
        ax.plot(r["estimate"], y, "o" if y == 0 else "s", ms=5, color=colour, linestyle="none")
        p = "" if pd.isna(r["p"]) else f", p={r['p']:.3g}"
        ax.annotate(
            f"{r['estimate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]{p}",
            xy=(1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=7,
        )
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(rows)), list(rows["analysis"]), fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    scale = "log scale" if outcome.is_log else outcome.unit
    ax.set_xlabel(f"{outcome.label}: intervention - control, change to {meta.visits[-1]} ({scale}; {1 - alpha:.0%} CI)")
    return fig
