"""Figures of the trial outcomes: per-outcome trajectories, the intervention forest plot, patients vs healthy.

Individual trajectories are drawn as anonymous faint lines; no identifier is shown.
"""

from __future__ import annotations

import math

import matplotlib.lines
import numpy as np
import pandas as pd
from scipy import stats

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import ARM_COLOURS, apply_style, plain_log_ticks, plt
from pnitrial.report.precision import round_array


def trajectory(frame: pd.DataFrame, meta: Trial, key: str, emmeans: pd.DataFrame, alpha: float = 0.05) -> plt.Figure:
    """One outcome over the visits: faint individual lines, EMMs with CI by arm, healthy-control baseline band.

    Individual lines are anonymous; the healthy band is the mean (the geometric mean for log
    outcomes) with its t-based CI.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        The outcome.
    emmeans : DataFrame
        Estimated marginal means on the response scale (`pnitrial.report.tables.emmeans_table`).
    alpha : float, optional
        Sets the CI level.

    Returns
    -------
    Figure

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none")
    >>> arms = {"intervention": "A", "control": "B", "healthy": "H"}
    >>> meta = Trial("demo", arms, ("pre", "post"), outcomes=(il6, pain), participants={"healthy": 2})
    >>> frame = pd.DataFrame({"pid": [1, 1, 2, 2, 3, 4], "role": np.repeat(["intervention", "control", "healthy"], 2),
    ...                       "visit": ["pre", "post", "pre", "post", "pre", "pre"], "visit_index": [0, 1, 0, 1, 0, 0],
    ...                       "outcome": "pain", "value": [6.0, 4.0, 6.0, 6.0, 2.0, 3.0]})
    >>> emmeans = pd.DataFrame({"outcome": "pain", "arm": ["A", "A", "B", "B"], "visit": ["pre", "post"] * 2,
    ...                         "response": [6.0, 4.0, 6.0, 6.0], "response_ci_low": [5.0, 3.0, 5.0, 5.0],
    ...                         "response_ci_high": [7.0, 5.0, 7.0, 7.0]})
    >>> fig = trajectory(frame, meta, "pain", emmeans)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['H at baseline (mean, CI)', 'B (EMM, 95% CI)', 'A (EMM, 95% CI)']
    >>> plt.close(fig)
    """
    apply_style()
    o = meta.outcome(key)
    visits = meta.visits
    sub = frame[frame["outcome"] == key]
    fig, ax = plt.subplots(figsize=(4.2, 3.6), layout="constrained")
    offset = {"control": -0.06, "intervention": 0.06}
    for role in ("control", "intervention"):
        arm = sub[sub["role"] == role]
        for _, person in arm.groupby("pid", sort=True):
            ax.plot(
                person["visit_index"] + offset[role],
                person["value"],
                color=ARM_COLOURS[role],
                alpha=0.18,
                lw=0.7,
                marker="o",
                ms=1.5,
            )
        em = emmeans[(emmeans["outcome"] == key) & (emmeans["arm"] == meta.arms[role])]
        if len(em) and em["response"].notna().all():
            x = np.array([visits.index(v) for v in em["visit"]]) + 2.5 * offset[role]
            y = em["response"].to_numpy()
            err = np.vstack([y - em["response_ci_low"].to_numpy(), em["response_ci_high"].to_numpy() - y])
            ax.errorbar(
                x,
                y,
                yerr=err,
                color=ARM_COLOURS[role],
                lw=2,
                capsize=3,
                marker="s",
                ms=5,
                label=f"{meta.arms[role]} (EMM, {100 * (1 - alpha):.0f}% CI)",
            )
    healthy = sub[(sub["role"] == "healthy") & (sub["visit"] == visits[0])]["value"]
    if len(healthy) >= 2:
        # scalar libm, not numpy's SIMD log, so the band is the same on every processor
        v = pd.Series([math.log(x) for x in healthy]) if o.is_log else healthy
        half = stats.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        lo, mid, hi = v.mean() - half, v.mean(), v.mean() + half
        if o.is_log:
            lo, mid, hi = math.exp(lo), math.exp(mid), math.exp(hi)
        lo, mid, hi = round_array([lo, mid, hi])
        ax.axhspan(lo, hi, color=ARM_COLOURS["healthy"], alpha=0.2, lw=0)
        ax.axhline(
            mid,
            color=ARM_COLOURS["healthy"],
            lw=1,
            ls="--",
            label=f"{meta.arms['healthy']} at baseline ({'geometric ' if o.transform == 'log' else ''}mean, CI)",
        )
    if o.is_log:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    ax.set_xticks(range(len(visits)), visits)
    ax.set_xlim(-0.4, len(visits) - 0.6)
    ax.set_ylabel(f"{o.label} ({o.unit})")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return fig


ESTIMAND_STYLE = {
    "clda": ("cLDA", "D"),
    "ancova": ("ANCOVA", "s"),
    "lmm": ("LMM arm x visit", "o"),
    "clda_censored": ("cLDA, censored at the LOD", "v"),
}


def forest(effects: pd.DataFrame, meta: Trial) -> plt.Figure:
    """Intervention effects per outcome under every estimand; the primary one in black, labelled.

    Ratios for log outcomes, differences in instrument units otherwise; a filled marker is
    significant after FDR adjustment.

    Parameters
    ----------
    effects : DataFrame
        The effects table (`pnitrial.report.tables.effects_table`).
    meta : Trial
        The trial.

    Returns
    -------
    Figure
        A panel of ratios (log outcomes) above a panel of differences, each present only when it
        has outcomes.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none")
    >>> arms = {"intervention": "A", "control": "B", "healthy": "H"}
    >>> meta = Trial("demo", arms, ("pre", "post"), outcomes=(il6, pain), participants={"healthy": 2})
    >>> effects = pd.DataFrame({"outcome": ["il6", "il6", "pain"], "estimand": "clda", "primary": True,
    ...                         "contrast": "interaction:post", "visit": "post", "scale": ["model", "ratio", "model"],
    ...                         "estimate": [-0.22, 0.8, -1.5], "ci_low": [-0.4, 0.67, -2.9],
    ...                         "ci_high": [-0.04, 0.96, -0.1], "p_fdr": [0.03, 0.03, 0.04]})
    >>> fig = forest(effects, meta)
    >>> len(fig.axes), [t.get_text() for t in fig.axes[0].texts]
    (2, ['0.80 [0.67, 0.96]'])
    >>> plt.close(fig)
    """
    apply_style()
    inter = effects[effects["contrast"].str.startswith("interaction:")]
    # the primary estimand can differ by outcome (the censored cLDA where values are below the LOD)
    primaries = list(dict.fromkeys(inter.loc[inter["primary"].astype(bool), "estimand"])) or ["clda"]
    present = set(inter["estimand"])
    order = [e for e in primaries + [e for e in ESTIMAND_STYLE if e not in primaries] if e in present or e in primaries]
    offsets = dict(zip(order, (0.0, -0.25, 0.25, -0.12)[: len(order)], strict=True))
    panels = []
    for log_scale in (True, False):
        outs = [o for o in meta.outcomes if o.is_log == log_scale]
        if outs:
            panels.append((log_scale, outs))
    n_rows = [len(outs) * (len(meta.visits) - 1) for _, outs in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(7.4, 1.2 + 0.42 * sum(n_rows) + 0.5 * len(panels)),
        layout="constrained",
        squeeze=False,
        gridspec_kw={"height_ratios": [n + 1 for n in n_rows]},
    )
    for ax, (log_scale, outs) in zip(axes[:, 0], panels, strict=True):
        scale = "ratio" if log_scale else "model"
        labels, y = [], 0
        for o in outs:
            for visit in meta.visits[1:]:
                when = f" ({visit})" if len(meta.visits) > 2 else ""
                unit = "" if log_scale else f" [{o.unit}]"
                labels.append(f"{o.label}{when}{unit}")
                rows = inter[(inter["outcome"] == o.key) & (inter["scale"] == scale) & (inter["visit"] == visit)]
                txt = "not estimated"
                for r in rows.itertuples():
                    if pd.isna(r.estimate):
                        continue
                    name, marker = ESTIMAND_STYLE[r.estimand]
                    is_primary = bool(r.primary)
                    colour = "black" if is_primary else "#8c8c8c"
                    yy = y + offsets[r.estimand]
                    sig = pd.notna(r.p_fdr) and r.p_fdr < 0.05
                    ax.plot([r.ci_low, r.ci_high], [yy, yy], color=colour, lw=1.2 if is_primary else 0.8)
                    ax.plot(
                        r.estimate,
                        yy,
                        marker=marker,
                        ms=5.5 if is_primary else 4,
                        color=colour,
                        markerfacecolor=colour if sig else "white",
                        linestyle="none",
                    )
                    if is_primary:
                        txt = f"{r.estimate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]"
                ax.annotate(txt, xy=(1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=7)
                y += 1
        ax.axvline(1.0 if log_scale else 0.0, color="grey", lw=0.8, ls="--")
        if log_scale:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlabel(
            "ratio of change, intervention / control"
            if log_scale
            else "difference in change, intervention - control (instrument units)"
        )
    handles = [
        matplotlib.lines.Line2D(
            [],
            [],
            marker=ESTIMAND_STYLE[e][1],
            linestyle="none",
            color="black" if e in primaries else "#8c8c8c",
            label=ESTIMAND_STYLE[e][0] + (" (primary)" if e in primaries else ""),
        )
        for e in order
    ]
    ncol = 3 if len(handles) <= 3 else 2
    n_rows = -(-len(handles) // ncol)
    axes[0, 0].legend(handles=handles, fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=ncol)
    axes[0, 0].set_title(
        "Intervention effects (filled: FDR-adjusted p < 0.05; text: primary estimand)",
        fontsize=9,
        loc="left",
        pad=18 + 11 * (n_rows - 1),
    )
    return fig


def baseline_forest(table: pd.DataFrame, meta: Trial) -> plt.Figure:
    """Hedges g for patients minus healthy controls at baseline, per outcome, with its CI.

    Hedges g is the bias-corrected standardised mean difference (Hedges 1981, J Educ Stat 6:107).

    Parameters
    ----------
    table : DataFrame
        The baseline comparison: ``outcome``, ``hedges_g``, ``g_ci_low`` and ``g_ci_high``; rows
        without g are left out.
    meta : Trial
        The trial, for outcome labels.

    Returns
    -------
    Figure

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none")
    >>> arms = {"intervention": "A", "control": "B", "healthy": "H"}
    >>> meta = Trial("demo", arms, ("pre", "post"), outcomes=(il6, pain), participants={"healthy": 2})
    >>> table = pd.DataFrame({"outcome": ["il6", "pain"], "hedges_g": [0.6, 1.4], "g_ci_low": [0.0, 0.7],
    ...                       "g_ci_high": [1.2, 2.1]})
    >>> fig = baseline_forest(table, meta)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['IL-6', 'Pain']
    >>> plt.close(fig)
    """
    apply_style()
    labels = {o.key: o.label for o in meta.outcomes}
    t = table[table["hedges_g"].notna()]
    fig, ax = plt.subplots(figsize=(6.0, 0.9 + 0.3 * max(len(t), 1)), layout="constrained")
    for y, r in enumerate(t.itertuples()):
        ax.plot([r.g_ci_low, r.g_ci_high], [y, y], color="black", lw=1.2)
        ax.plot(r.hedges_g, y, marker="o", ms=5, color="black")
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(t)), [labels[k] for k in t["outcome"]])
    ax.set_ylim(len(t) - 0.5, -0.5)
    ax.set_xlabel("Hedges g, patients - healthy controls at baseline (95% CI)")
    return fig
