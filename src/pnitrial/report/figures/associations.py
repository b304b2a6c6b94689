"""Heatmaps of biomarker-symptom correlations: one panel per analysis, FDR-significant cells starred."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import apply_style
from pnitrial.report.numbers import MINUS, number

TITLES = {
    "rm_corr": "Repeated-measures r (trial participants, all visits)",
    "change_pearson": "Change-change Pearson r (intervention arm)",
    "change_spearman": "Change-change Spearman \u03c1 (intervention arm)",
}


def association_heatmap(table: pd.DataFrame, meta: Trial, alpha: float = 0.05) -> plt.Figure:
    """Heatmaps of biomarker-symptom correlations, one panel per analysis; * where the FDR-adjusted p < alpha.

    Rows are biomarkers, columns clinical outcomes, colour r in [-1, 1]; the repeated-measures
    correlation is Bakdash & Marusich's (2017, Front Psychol 8:456).

    Parameters
    ----------
    table : DataFrame
        The associations table: ``analysis`` (keys of ``TITLES``), ``biomarker``, ``clinical``,
        ``r`` and ``p_fdr``.
    meta : Trial
        The trial, for outcome labels.
    alpha : float, optional
        Significance level of the stars.

    Returns
    -------
    Figure
        One panel per analysis present and a colour bar; a one-line note when there are no pairs.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none")
    >>> arms = {"intervention": "A", "control": "B", "healthy": None}
    >>> meta = Trial("demo", arms, ("pre", "post"), outcomes=(il6, pain))
    >>> table = pd.DataFrame({"analysis": ["rm_corr", "change_pearson"], "biomarker": "il6", "clinical": "pain",
    ...                       "r": [0.31, 0.12], "p_fdr": [0.02, 0.6]})
    >>> fig = association_heatmap(table, meta)
    >>> len(fig.axes), [t.get_text() for t in fig.axes[0].texts]  # two panels and the colour bar
    (3, ['0.31*'])
    >>> plt.close(fig)
    """
    apply_style()
    labels = {o.key: o.label for o in meta.outcomes}
    xs = list(dict.fromkeys(table["biomarker"]))
    ys = list(dict.fromkeys(table["clinical"]))
    analyses = [a for a in TITLES if (table["analysis"] == a).any()]
    if not analyses:
        fig, ax = plt.subplots(figsize=(4, 1), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, "No biomarker-symptom pairs in this codebook", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(
        len(analyses),
        1,
        # wide enough for the panel titles and the colour bar however few outcomes a codebook has
        figsize=(max(5.6, 3.0 + 0.55 * len(ys)), 1.3 + max(1.2, 0.6 + 0.32 * len(xs)) * len(analyses)),
        layout="constrained",
        squeeze=False,
    )
    image = None
    for k, (ax, a) in enumerate(zip(axes[:, 0], analyses, strict=True)):
        sub = table[table["analysis"] == a].set_index(["biomarker", "clinical"])
        r = np.full((len(xs), len(ys)), np.nan)
        star = np.zeros_like(r, dtype=bool)
        for (x, y), row in sub.iterrows():
            r[xs.index(x), ys.index(y)] = row["r"]
            star[xs.index(x), ys.index(y)] = bool(row["p_fdr"] < alpha)
        image = ax.imshow(np.ma.masked_invalid(r), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        for i, j in zip(*np.nonzero(np.isfinite(r)), strict=True):
            text = number(r[i, j], 2, minus=MINUS) + ("*" if star[i, j] else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=6)
        ax.set_yticks(range(len(xs)), [labels.get(k, k) for k in xs], fontsize=7)
        bottom = k == len(analyses) - 1  # outcome names once, under the last panel
        names = [labels.get(c, c) for c in ys] if bottom else [""] * len(ys)
        ax.set_xticks(range(len(ys)), names, fontsize=7, rotation=40, ha="right")
        ax.set_title(TITLES[a], fontsize=8, loc="left")
        ax.spines[:].set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.6, label=f"r (* FDR-adjusted p < {alpha:g})")
    return fig
