"""The tipping-point figure: each strategy's effect at the last visit as the intervention arm's imputed values shift."""

from __future__ import annotations

import math

import matplotlib.lines
import numpy as np
import pandas as pd

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import apply_style, plain_log_ticks, plt
from pnitrial.report.numbers import MINUS, number

STRATEGY_STYLE = {  # colour and marker per strategy, readable in grey scale too
    "MAR": ("#1b7837", "o"),
    "JR": ("#762a83", "s"),
    "CR": ("#e08214", "^"),
    "CIR": ("#2166ac", "D"),
    "ICE table": ("black", "x"),
}


def tipping_point_figure(effects: pd.DataFrame, tipping: pd.DataFrame, meta: Trial, alpha: float = 0.05) -> plt.Figure:
    """One panel per outcome: each strategy's effect at the last visit, with its CI, against delta in SD units.

    Lines are the strategies (``<strategy>+delta`` rows); the first strategy's CI is shaded and a
    dotted line marks its tipping point (the delta at which the effect stops being significant)
    when it lies within the grid. Log outcomes are drawn as ratios.

    Parameters
    ----------
    effects : DataFrame
        ``missing_data.csv`` (`pnitrial.analyses.reference_based.missing_data_analysis`).
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
    >>> effects, tipping = missing_data_analysis(frame, trial, ("MAR", "JR"), (0.0, 1.0, 2.0, 3.0))
    >>> fig = tipping_point_figure(effects, tipping, trial)
    >>> fig.axes[0].get_title().splitlines(), [t.get_text() for t in fig.legends[0].get_texts()]
    (['Pain (w8)', 'MAR tips at δ = 2.76 SD'], ['MAR', 'JR'])
    >>> plt.close(fig)
    """
    apply_style()
    rows = effects[effects["strategy"].str.endswith("+delta", na=False)]
    outs = [o for o in meta.outcomes if (rows["outcome"] == o.key).any()]
    if not outs:
        fig, ax = plt.subplots(figsize=(5, 1), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, "No delta analysis (missing_data.delta_sd and delta are empty)", ha="center", va="center")
        return fig
    strategies, names = _distinct_strategies(rows)
    ncol = min(4, len(outs))
    nrow = math.ceil(len(outs) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(max(6.0, 2.7 * ncol + 0.4), 2.3 * nrow + 1.1), layout="constrained", squeeze=False
    )
    for ax in axes.ravel()[len(outs) :]:
        ax.axis("off")
    for ax, o in zip(axes.ravel(), outs, strict=False):
        scale = "ratio" if o.is_log else "model"
        mine = rows[(rows["outcome"] == o.key) & (rows["scale"] == scale) & (rows["status"] == "ok")]
        visit = meta.visits[-1] if (mine["visit"] == meta.visits[-1]).any() else ""
        title = f"{o.label} ({visit})" if visit else o.label
        ax.set_title(title, fontsize=8)
        mine = mine[mine["visit"] == visit]
        if mine.empty:
            ax.text(0.5, 0.5, "not estimated", transform=ax.transAxes, ha="center", va="center", fontsize=7)
            continue
        for k, s in enumerate(strategies):
            sub = mine[mine["strategy"] == f"{s}+delta"].sort_values("delta_sd", kind="stable")
            if sub.empty:
                continue
            colour, marker = STRATEGY_STYLE.get(s, ("black", "o"))
            x = sub["delta_sd"].to_numpy(dtype=float)
            if k == 0:
                ax.fill_between(x, sub["ci_low"], sub["ci_high"], color=colour, alpha=0.15, lw=0)
            else:
                ax.plot(x, sub["ci_low"], color=colour, lw=0.6, ls=(0, (2, 2)))
                ax.plot(x, sub["ci_high"], color=colour, lw=0.6, ls=(0, (2, 2)))
            ax.plot(x, sub["estimate"], color=colour, lw=1.4, marker=marker, ms=3, label=names[s])
        ax.axhline(1.0 if o.is_log else 0.0, color="grey", lw=0.8, ls="--")
        if o.is_log:
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
        tip = tipping[(tipping["outcome"] == o.key) & (tipping["visit"] == visit)]
        tip = tip[tip["strategy"] == strategies[0]]
        if len(tip) and pd.notna(tip["tipping_delta_sd"].iloc[0]):
            t = float(tip["tipping_delta_sd"].iloc[0])
            lo, hi = np.nanmin(mine["delta_sd"]), np.nanmax(mine["delta_sd"])
            if lo <= t <= hi:
                ax.axvline(t, color="black", lw=0.8, ls=":")
            # in the title, where it cannot cover a line
            ax.set_title(f"{title}\n{strategies[0]} tips at \u03b4 = {number(t, 2, MINUS)} SD", fontsize=8)
        ax.set_xlabel("\u03b4 (pooled baseline SD)", fontsize=7)
        ax.set_ylabel("ratio" if o.is_log else f"difference ({o.unit})", fontsize=7)
        ax.tick_params(labelsize=7)
    handles = [
        matplotlib.lines.Line2D(
            [],
            [],
            color=STRATEGY_STYLE.get(s, ("black", "o"))[0],
            marker=STRATEGY_STYLE.get(s, ("black", "o"))[1],
            ms=4,
            lw=1.4,
            label=names[s],
        )
        for s in strategies
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7, frameon=False)
    arm = meta.arms["intervention"]
    fig.suptitle(
        f"Effect at the last visit as \u03b4 is added to the {arm} arm's imputed values\n"
        f"{100 * (1 - alpha):.0f}% CI: shaded for {strategies[0]}, dashed for the others",
        fontsize=8,
    )
    return fig


def _distinct_strategies(rows: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The strategies whose delta lines differ somewhere, each named with those it coincides with.

    With one post-baseline visit, or when every event is at the first one, JR, CR and CIR impute
    the same values: one line ``JR = CR = CIR`` instead of three drawn over each other.
    """
    order = list(dict.fromkeys(rows["strategy"].str.removesuffix("+delta")))
    cols = ["outcome", "scale", "visit", "delta"]
    lines = {
        s: rows[rows["strategy"] == f"{s}+delta"]
        .sort_values(cols, kind="stable")[["estimate", "ci_low", "ci_high"]]
        .to_numpy(dtype=float)
        for s in order
    }
    kept: list[str] = []
    names: dict[str, str] = {}
    for s in order:
        same = next(
            (
                k
                for k in kept
                if lines[k].shape == lines[s].shape
                and np.allclose(lines[k], lines[s], rtol=1e-9, atol=1e-12, equal_nan=True)
            ),
            None,
        )
        if same is None:
            kept.append(s)
            names[s] = s
        else:
            names[same] += f" = {s}"
    return kept, names
