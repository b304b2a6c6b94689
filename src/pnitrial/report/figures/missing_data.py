"""The tipping-point figure: the MAR effect at the last visit as the intervention arm's imputed values shift."""

from __future__ import annotations

import math

import pandas as pd

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import ARM_COLOURS, apply_style, plain_log_ticks, plt
from pnitrial.report.numbers import MINUS, number


def tipping_point_figure(effects: pd.DataFrame, tipping: pd.DataFrame, meta: Trial, alpha: float = 0.05) -> plt.Figure:
    """One panel per outcome: the MAR+delta effect at the last visit with its CI, against delta in SD units.

    A dotted line marks the tipping point (the delta at which the effect stops being significant)
    when it lies within the grid's range; log outcomes are drawn as ratios.

    Parameters
    ----------
    effects : DataFrame
        ``reference_based.csv`` (`pnitrial.analyses.reference_based.missing_data_analysis`).
    tipping : DataFrame
        ``tipping_point.csv``.
    meta : Trial
        The trial, for labels and units.
    alpha : float, optional
        The CI level's complement.

    Returns
    -------
    Figure

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> from pnitrial.analyses.reference_based import missing_data_analysis
    >>> frame, trial = toy_trial(n=30, visits=("pre", "w4", "w8"), effect=-2.0, seed=4)
    >>> frame = frame[~((frame["pid"] % 5 == 0) & (frame["visit"] == "w8"))]
    >>> effects, tipping = missing_data_analysis(frame, trial, ("MAR",), (0.0, 1.0, 2.0, 3.0))
    >>> fig = tipping_point_figure(effects, tipping, trial)
    >>> fig.axes[0].get_title()
    'Pain (w8)'
    >>> plt.close(fig)
    """
    apply_style()
    rows = effects[effects["strategy"] == "MAR+delta"]
    outs = [o for o in meta.outcomes if (rows["outcome"] == o.key).any()]
    if not outs:
        fig, ax = plt.subplots(figsize=(5, 1), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, "No delta analysis (missing_data.strategies without MAR)", ha="center", va="center")
        return fig
    ncol = min(4, len(outs))
    nrow = math.ceil(len(outs) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(2.6 * ncol + 0.4, 2.3 * nrow + 0.6), layout="constrained", squeeze=False
    )
    for ax in axes.ravel()[len(outs) :]:
        ax.axis("off")
    colour = ARM_COLOURS["intervention"]
    for ax, o in zip(axes.ravel(), outs, strict=False):
        scale = "ratio" if o.is_log else "model"
        sub = rows[(rows["outcome"] == o.key) & (rows["scale"] == scale) & (rows["status"] == "ok")]
        visit = (
            meta.visits[-1] if (sub["visit"] == meta.visits[-1]).any() else (sub["visit"].iloc[-1] if len(sub) else "")
        )
        sub = sub[sub["visit"] == visit].sort_values("delta_sd", kind="stable")
        ax.set_title(f"{o.label} ({visit})" if visit else o.label, fontsize=8)
        if sub.empty:
            ax.text(0.5, 0.5, "not estimated", transform=ax.transAxes, ha="center", va="center", fontsize=7)
            continue
        x = sub["delta_sd"].to_numpy(dtype=float)
        ax.fill_between(x, sub["ci_low"], sub["ci_high"], color=colour, alpha=0.2, lw=0)
        ax.plot(x, sub["estimate"], color=colour, lw=1.5, marker="o", ms=3)
        ax.axhline(1.0 if o.is_log else 0.0, color="grey", lw=0.8, ls="--")
        if o.is_log:
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
        tip = tipping[(tipping["outcome"] == o.key) & (tipping["visit"] == visit)]
        if len(tip) and pd.notna(tip["tipping_delta_sd"].iloc[0]):
            t = float(tip["tipping_delta_sd"].iloc[0])
            if x.min() <= t <= x.max():
                ax.axvline(t, color="black", lw=0.8, ls=":")
            ax.text(
                0.02,
                0.98,
                f"tipping \u03b4 = {number(t, 2, MINUS)} SD",
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=6.5,
            )
        ax.set_xlabel("\u03b4 (pooled baseline SD)", fontsize=7)
        ax.set_ylabel("ratio" if o.is_log else f"difference ({o.unit})", fontsize=7)
        ax.tick_params(labelsize=7)
    arm = meta.arms["intervention"]
    fig.suptitle(
        f"MAR effect as \u03b4 is added to the {arm} arm's imputed values ({100 * (1 - alpha):.0f}% CI)",
        fontsize=8,
    )
    return fig
