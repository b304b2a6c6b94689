"""Figures for a panel of many analytes: a volcano plot and a top-N forest of the primary effect."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pnitrial.report.figures.style import apply_style, plt


def _primary(effects: pd.DataFrame) -> pd.DataFrame:
    prim = effects[effects["primary"].astype(bool) & (effects["scale"] == "model")]
    return prim[prim["estimate"].notna()]


def volcano(effects: pd.DataFrame, panel: dict, alpha: float = 0.05, n_labels: int = 10) -> plt.Figure:
    """Volcano plot: the primary intervention effect of every analyte against -log10 p, one panel per later visit.

    Analytes with an FDR-adjusted p below alpha are coloured, and the smallest of their
    -log10 p marks the threshold; the `n_labels` smallest p are named.

    Parameters
    ----------
    effects : DataFrame
        The panel's adjusted effects (`pnitrial.report.tables.panel_effects_table`).
    panel : dict
        The panel metadata (``label`` and ``unit``).
    alpha : float, optional
        FDR level.
    n_labels : int, optional
        How many analytes to name per panel.

    Returns
    -------
    Figure

    Examples
    --------
    >>> effects = pd.DataFrame({"outcome": ["P0001", "P0002", "P0003"], "primary": True, "scale": "model",
    ...                         "estimand": "clda", "visit": "post", "estimate": [0.8, -0.1, 0.3],
    ...                         "ci_low": [0.4, -0.5, -0.1], "ci_high": [1.2, 0.3, 0.7],
    ...                         "p": [0.0004, 0.6, 0.12], "p_fdr": [0.0012, 0.6, 0.18]})
    >>> panel = {"label": "Inflammation panel", "unit": "NPX"}
    >>> fig = volcano(effects, panel)
    >>> len(fig.axes), fig.axes[0].get_title(loc="left")
    (1, 'post: 1 of 3 analytes')
    >>> plt.close(fig)
    """
    apply_style()
    prim = _primary(effects)
    visits = list(dict.fromkeys(prim["visit"]))
    n = max(len(visits), 1)
    fig, axes = plt.subplots(1, n, figsize=(5.4 * n, 4.4), squeeze=False, layout="constrained")
    estimand = prim["estimand"].iloc[0] if len(prim) else ""
    for ax, visit in zip(axes[0], visits, strict=False):
        d = prim[prim["visit"] == visit].sort_values(["p", "outcome"], kind="stable")
        y = np.array([-math.log10(min(max(p, 1e-300), 1.0)) for p in d["p"].to_numpy(dtype=float)])
        hit = (d["p_fdr"] < alpha).to_numpy()
        ax.scatter(d["estimate"][~hit], y[~hit], s=7, color="#9e9e9e", linewidths=0, label="not significant")
        ax.scatter(d["estimate"][hit], y[hit], s=10, color="#b2182b", linewidths=0, label=f"FDR < {alpha:g}")
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        if hit.any():  # the largest p still significant after adjustment marks the FDR threshold
            ax.axhline(y[hit].min(), color="#b2182b", lw=0.6, ls=":")
        for r, yy in zip(d.head(n_labels).itertuples(), y[:n_labels], strict=False):
            ax.annotate(r.outcome, (r.estimate, yy), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xlabel(f"intervention effect at {visit} ({panel['unit'] or 'model scale'})")
        ax.set_ylabel("-log10 p")
        ax.set_title(f"{visit}: {int(hit.sum())} of {len(d)} analytes", fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=7, frameon=True, loc="lower right")
    fig.suptitle(f"{panel['label']}\nprimary estimand ({estimand}): intervention effect per analyte", fontsize=9)
    return fig


def top_forest(effects: pd.DataFrame, panel: dict, top_n: int = 30, alpha: float = 0.05) -> plt.Figure:
    """Forest plot of the top_n analytes by primary p at the last visit, with CIs; filled markers pass FDR.

    Parameters
    ----------
    effects : DataFrame
        The panel's adjusted effects (`pnitrial.report.tables.panel_effects_table`).
    panel : dict
        The panel metadata (``label`` and ``unit``).
    top_n : int, optional
        How many analytes to show.
    alpha : float, optional
        FDR level of the filled markers.

    Returns
    -------
    Figure

    Examples
    --------
    >>> effects = pd.DataFrame({"outcome": ["P0001", "P0002", "P0003"], "primary": True, "scale": "model",
    ...                         "estimand": "clda", "visit": "post", "estimate": [0.8, -0.1, 0.3],
    ...                         "ci_low": [0.4, -0.5, -0.1], "ci_high": [1.2, 0.3, 0.7],
    ...                         "p": [0.0004, 0.6, 0.12], "p_fdr": [0.0012, 0.6, 0.18]})
    >>> panel = {"label": "Inflammation panel", "unit": "NPX"}
    >>> fig = top_forest(effects, panel, top_n=2)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['P0001', 'P0003']
    >>> plt.close(fig)
    """
    apply_style()
    prim = _primary(effects)
    last = prim[prim["visit"] == prim["visit"].iloc[-1]] if len(prim) else prim
    top = last.sort_values(["p", "outcome"], kind="stable").head(top_n)
    fig, ax = plt.subplots(figsize=(6.8, 1.3 + 0.22 * max(len(top), 1)), layout="constrained")
    for y, r in enumerate(top.itertuples()):
        sig = pd.notna(r.p_fdr) and r.p_fdr < alpha
        ax.plot([r.ci_low, r.ci_high], [y, y], color="black", lw=1)
        ax.plot(r.estimate, y, marker="o", ms=4.5, color="black", markerfacecolor="black" if sig else "white")
        text = f"p={r.p:.2g}, q={r.p_fdr:.2g}"
        ax.annotate(text, xy=(1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=6)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(top)), top["outcome"].tolist())
    ax.set_ylim(len(top) - 0.5, -0.5)
    visit = top["visit"].iloc[0] if len(top) else ""
    estimand = top["estimand"].iloc[0] if len(top) else ""
    ax.set_xlabel(f"{estimand} intervention effect at {visit} ({panel['unit'] or 'model scale'})")
    ax.set_title(
        f"{panel['label']}: top {len(top)} analytes (filled: FDR-adjusted p < {alpha:g})", fontsize=9, loc="left"
    )
    return fig
