"""Figures of the trial outcomes: per-outcome trajectories, the intervention forest plot, patients vs healthy.

Individual trajectories are drawn as anonymous faint lines; no identifier is shown.
"""

from __future__ import annotations

import math

import matplotlib.collections
import matplotlib.lines
import matplotlib.patches
import numpy as np
import pandas as pd
from scipy import stats

from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import ARM_COLOURS, apply_style, plain_log_ticks, plt
from pnitrial.report.numbers import MINUS, effect_text
from pnitrial.report.precision import round_array

MANY_PARTICIPANTS = 200  # above this many in an arm, its values are drawn as boxes per visit, not as lines

ARM_MARKERS = {"intervention": "o", "control": "s"}


def _primary_means(emmeans: pd.DataFrame, key: str) -> tuple[pd.DataFrame, str]:
    """The outcome's EMMs from its primary model, else from the arm x visit model; and which model that is."""
    em = emmeans[emmeans["outcome"] == key]
    if "estimand" not in em.columns:
        return em, ""
    for chosen in (em[em["primary"].astype(bool)], em[em["estimand"] == "lmm"]):
        if len(chosen) and chosen["response"].notna().all():
            estimand = str(chosen["estimand"].iloc[0])
            return chosen, ESTIMAND_STYLE[estimand][0] + (" (primary)" if bool(chosen["primary"].iloc[0]) else "")
    return em.iloc[:0], ""


def _visit_boxes(ax, x: np.ndarray, y: np.ndarray, colour: str) -> None:
    """An arm's values at each visit as a box (quartiles, whiskers to 1.5 IQR, no outlier points)."""
    at = np.unique(x)
    groups = [y[(x == v) & np.isfinite(y)] for v in at]
    keep = [k for k, g in enumerate(groups) if len(g)]
    ax.boxplot(
        [groups[k] for k in keep],
        positions=at[keep],
        widths=0.09,
        showfliers=False,
        patch_artist=True,
        manage_ticks=False,
        boxprops={"facecolor": colour, "alpha": 0.25, "edgecolor": colour, "linewidth": 0.8},
        medianprops={"color": colour, "linewidth": 1.0},
        whiskerprops={"color": colour, "linewidth": 0.8},
        capprops={"color": colour, "linewidth": 0.8},
    )


def trajectory(frame: pd.DataFrame, meta: Trial, key: str, emmeans: pd.DataFrame, alpha: float = 0.05) -> plt.Figure:
    """One outcome over the visits: faint individual lines, EMMs with CI by arm, healthy-control baseline band.

    Individual lines are anonymous; arms differ by colour and marker shape. The EMMs come from the
    outcome's primary model (named above the plot; the cLDA's arms share the baseline mean), or
    from the arm x visit model when the primary one did not fit. A value below the limit of
    detection is drawn hollow at the LOD, shown as a dashed line. The healthy band is the mean
    (the geometric mean for log outcomes) with its t-based CI.

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
    ...                       "outcome": "pain", "value": [6.0, 4.0, 6.0, 6.0, 2.0, 3.0], "censored": 0, "lod": np.nan})
    >>> emmeans = pd.DataFrame({"outcome": "pain", "estimand": "clda", "primary": True, "arm": ["A", "A", "B", "B"],
    ...                         "visit": ["pre", "post"] * 2, "response": [6.0, 4.0, 6.0, 6.0],
    ...                         "response_ci_low": [5.0, 3.0, 5.0, 5.0], "response_ci_high": [7.0, 5.0, 7.0, 7.0]})
    >>> fig = trajectory(frame, meta, "pain", emmeans)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['H at baseline (mean, CI)', 'B (EMM, 95% CI)', 'A (EMM, 95% CI)']
    >>> fig.axes[0].get_title(loc="left")
    'Means: cLDA (primary)'
    >>> plt.close(fig)
    """
    apply_style()
    o = meta.outcome(key)
    visits = meta.visits
    sub = frame[frame["outcome"] == key]
    censored = sub["censored"].astype(bool) if "censored" in sub.columns else pd.Series(False, index=sub.index)
    # a value below the LOD is drawn at the LOD, not at the value substituted for it in the models
    shown = sub["value"].where(~censored, sub["lod"]) if censored.any() else sub["value"]
    means, model = _primary_means(emmeans, key)
    fig, ax = plt.subplots(figsize=(4.4 + 0.3 * max(len(visits) - 4, 0), 3.8), layout="constrained")
    offset = {"control": -0.06, "intervention": 0.06}
    boxed = False
    for role in ("control", "intervention"):
        colour, marker = ARM_COLOURS[role], ARM_MARKERS[role]
        arm = sub["role"] == role
        mine = sub[arm].sort_values(["pid", "visit_index"], kind="stable")
        x = mine["visit_index"].to_numpy(dtype=float) + offset[role]
        y = shown.loc[mine.index].to_numpy(dtype=float)
        many = mine["pid"].nunique() > MANY_PARTICIPANTS
        boxed |= many
        if many:  # thousands of lines would hide the means: the arm's values per visit as boxes instead
            _visit_boxes(ax, x, y, colour)
        else:  # every participant's polyline in one collection and every point in one marker line
            cuts = np.flatnonzero(np.diff(mine["pid"].to_numpy())) + 1
            paths = [np.column_stack(pair) for pair in zip(np.split(x, cuts), np.split(y, cuts), strict=True)]
            lines = [path for path in paths if len(path) > 1]
            ax.add_collection(matplotlib.collections.LineCollection(lines, colors=colour, alpha=0.18, lw=0.7))
            ax.plot(x, y, linestyle="none", color=colour, alpha=0.18, marker=marker, ms=1.5)
        below = arm & censored
        if below.any() and not many:
            ax.plot(
                sub.loc[below, "visit_index"] + offset[role],
                shown[below],
                linestyle="none",
                marker=marker,
                ms=3.5,
                markerfacecolor="white",
                markeredgecolor=colour,
                markeredgewidth=0.8,
            )
        em = means[means["arm"] == meta.arms[role]]
        if len(em):
            x = np.array([visits.index(v) for v in em["visit"]]) + 2.5 * offset[role]
            y = em["response"].to_numpy()
            err = np.vstack([y - em["response_ci_low"].to_numpy(), em["response_ci_high"].to_numpy() - y])
            ax.errorbar(
                x,
                y,
                yerr=err,
                color=colour,
                lw=2,
                capsize=3,
                marker=marker,
                ms=5.5,
                label=f"{meta.arms[role]} (EMM, {100 * (1 - alpha):.0f}% CI)",
            )
    if censored.any():
        for i, lod in enumerate(sorted(set(sub.loc[censored, "lod"].astype(float)))):
            label = ("LOD" if boxed else "LOD (hollow: below it, drawn at it)") if i == 0 else None
            ax.axhline(lod, color="black", lw=0.8, ls=(0, (4, 3)), label=label)
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
    ax.set_xticks(range(len(visits)), visits, rotation=45 if len(visits) > 6 else 0)
    ax.set_xlim(-0.4, len(visits) - 0.6)
    ax.set_ylabel(f"{o.label} ({o.unit})")
    if model:
        ax.set_title(f"Means: {model}", loc="left", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    if boxed:
        handles.append(matplotlib.patches.Patch(facecolor="grey", alpha=0.25, edgecolor="grey"))
        labels.append("values per visit (box: quartiles; whiskers: 1.5 IQR)")
    if boxed:  # boxes fill the axes: the legend goes below them
        fig.legend(handles, labels, fontsize=7, frameon=False, loc="outside lower center", ncol=1)
    else:
        ax.legend(handles, labels, fontsize=7, frameon=False, loc="best")
    return fig


ESTIMAND_STYLE = {
    "clda": ("cLDA", "D"),
    "ancova": ("ANCOVA", "s"),
    "lmm": ("LMM arm \u00d7 visit", "o"),
    "clda_censored": ("cLDA, censored at the LOD", "v"),
}
GREY = "#8c8c8c"


def _forest_panels(meta: Trial) -> list[tuple[bool, str | None, list]]:
    """Outcomes grouped by scale (ratio or standardised) and direction of improvement, in codebook order."""
    keys = [(True, None), (True, "lower"), (True, "higher"), (False, "lower"), (False, "higher"), (False, None)]
    groups = {k: [o for o in meta.outcomes if (o.is_log, o.better) == k] for k in keys}
    return [(is_log, better, outs) for (is_log, better), outs in groups.items() if outs]


def _sides(meta: Trial, better: str | None) -> tuple[str, str]:
    """What the left and right of the null line mean: which arm is favoured, or the direction."""
    a, c = meta.arms["intervention"], meta.arms["control"]
    if better == "lower":
        return f"\u2190 favours {a}", f"favours {c} \u2192"
    if better == "higher":
        return f"\u2190 favours {c}", f"favours {a} \u2192"
    return f"\u2190 lower with {a}", f"higher with {a} \u2192"


def _pooled_sd(effect_sizes: pd.DataFrame | None) -> dict[str, float]:
    """Each outcome's pooled baseline SD (model scale), the denominator of its standardised effect."""
    if effect_sizes is None or effect_sizes.empty:
        return {}
    std = effect_sizes["effect_size"] == "standardised difference"
    rows = effect_sizes[std & effect_sizes["denominator_sd"].gt(0)]
    return {str(k): float(v) for k, v in rows.groupby("outcome", sort=False)["denominator_sd"].first().items()}


def forest(effects: pd.DataFrame, meta: Trial, effect_sizes: pd.DataFrame | None = None) -> plt.Figure:
    """Intervention effects per outcome under every estimand, each outcome on a scale where its CI reads.

    Log outcomes are shown as ratios; the others as standardised differences (the effect over the
    outcome's pooled baseline SD, as in ``effect_sizes.csv``), with the primary effect printed in
    instrument units. One marker shape per estimand, the primary one in black; a filled marker is
    significant after FDR adjustment. Outcomes are grouped by the codebook's ``better`` so that
    each panel's sides say which arm a result favours.

    Parameters
    ----------
    effects : DataFrame
        The effects table (`pnitrial.report.tables.effects_table`).
    meta : Trial
        The trial.
    effect_sizes : DataFrame, optional
        The effect-size table (`pnitrial.analyses.effect_sizes`); without it, or for an outcome it
        lacks, the differences are not drawn and only their text is shown.

    Returns
    -------
    Figure
        One panel per scale and direction of improvement that has outcomes.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none", better="lower")
    >>> arms = {"intervention": "A", "control": "B", "healthy": "H"}
    >>> meta = Trial("demo", arms, ("pre", "post"), outcomes=(il6, pain), participants={"healthy": 2})
    >>> effects = pd.DataFrame({"outcome": ["il6", "il6", "pain"], "estimand": "clda", "primary": True,
    ...                         "contrast": "interaction:post", "visit": "post", "scale": ["model", "ratio", "model"],
    ...                         "estimate": [-0.22, 0.8, -1.5], "ci_low": [-0.4, 0.67, -2.9],
    ...                         "ci_high": [-0.04, 0.96, -0.1], "p_fdr": [0.03, 0.03, 0.04]})
    >>> sizes = pd.DataFrame({"outcome": ["pain"], "effect_size": "standardised difference", "denominator_sd": 2.0})
    >>> fig = forest(effects, meta, sizes)
    >>> [t.get_text() for t in fig.axes[1].texts][:3]
    ['\u22121.50 [\u22122.90, \u22120.10] score', '\u2190 favours A', 'favours B \u2192']
    >>> fig.axes[1].lines[0].get_xdata().tolist()  # the CI in SD units
    [-1.45, -0.05]
    >>> plt.close(fig)
    """
    apply_style()
    inter = effects[effects["contrast"].str.startswith("interaction:")]
    sds = _pooled_sd(effect_sizes)
    # the primary estimand can differ by outcome (the censored cLDA where values are below the LOD)
    primaries = list(dict.fromkeys(inter.loc[inter["primary"].astype(bool), "estimand"])) or ["clda"]
    present = set(inter["estimand"])
    order = [e for e in primaries + [e for e in ESTIMAND_STYLE if e not in primaries] if e in present or e in primaries]
    # evenly spaced within an outcome's row, the primary estimands first (on top)
    spread = np.linspace(-0.28, 0.28, len(order)) if len(order) > 1 else np.zeros(1)
    offsets = dict(zip(order, spread.tolist(), strict=True))
    panels = _forest_panels(meta)
    later = meta.visits[1:]
    n_rows = [len(outs) * len(later) for _, _, outs in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(7.4, 1.4 + 0.42 * sum(n_rows) + 0.75 * len(panels)),
        layout="constrained",
        squeeze=False,
        gridspec_kw={"height_ratios": [n + 1.2 for n in n_rows]},
    )
    a, c = meta.arms["intervention"], meta.arms["control"]
    for ax, (log_scale, better, outs) in zip(axes[:, 0], panels, strict=True):
        scale = "ratio" if log_scale else "model"
        labels, y = [], 0
        for o in outs:
            sd = 1.0 if log_scale else sds.get(o.key)
            for visit in later:
                when = f" ({visit})" if len(later) > 1 else ""
                labels.append(f"{o.label}{when}")
                rows = inter[(inter["outcome"] == o.key) & (inter["scale"] == scale) & (inter["visit"] == visit)]
                txt = "not estimated"
                for r in rows.itertuples():
                    if pd.isna(r.estimate):
                        continue
                    is_primary = bool(r.primary)
                    if is_primary:
                        unit = "" if log_scale else f" {o.unit}"
                        txt = effect_text(r.estimate, r.ci_low, r.ci_high, minus=MINUS) + unit
                    if sd is None:
                        continue
                    _, marker = ESTIMAND_STYLE[r.estimand]
                    colour = "black" if is_primary else GREY
                    yy = y + offsets[r.estimand]
                    sig = pd.notna(r.p_fdr) and r.p_fdr < 0.05
                    ax.plot([r.ci_low / sd, r.ci_high / sd], [yy, yy], color=colour, lw=1.2 if is_primary else 0.8)
                    ax.plot(
                        r.estimate / sd,
                        yy,
                        marker=marker,
                        ms=5.5 if is_primary else 4,
                        color=colour,
                        markerfacecolor=colour if sig else "white",
                        linestyle="none",
                    )
                if sd is None and txt != "not estimated":
                    txt += " (not standardised)"
                ax.annotate(txt, xy=(1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=7)
                y += 1
        ax.axvline(1.0 if log_scale else 0.0, color="grey", lw=0.8, ls="--")
        if log_scale:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlabel(
            f"ratio of change, {a} / {c} (log scale)"
            if log_scale
            else f"standardised difference in change, {a} \u2212 {c} (pooled baseline SD)"
        )
        left, right = _sides(meta, better)
        ax.text(0.0, 1.0, left, transform=ax.transAxes, ha="left", va="bottom", fontsize=7, color="#404040")
        ax.text(1.0, 1.0, right, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="#404040")
        header = "primary: ratio [95% CI]" if log_scale else "primary: difference [95% CI]"
        ax.annotate(header, xy=(1.01, 1.0), xycoords="axes fraction", va="bottom", fontsize=7, fontweight="bold")
    handles = [
        matplotlib.lines.Line2D(
            [],
            [],
            marker=ESTIMAND_STYLE[e][1],
            linestyle="none",
            color="black" if e in primaries else GREY,
            markerfacecolor="white",
            label=ESTIMAND_STYLE[e][0] + (" (primary)" if e in primaries else ""),
        )
        for e in order
    ]
    handles.append(
        matplotlib.lines.Line2D(
            [], [], marker="o", linestyle="none", color="black", label="filled: FDR-adjusted p < 0.05"
        )
    )
    fig.legend(handles=handles, fontsize=7, frameon=False, loc="outside upper left", ncol=3)
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
