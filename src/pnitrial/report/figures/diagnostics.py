"""Diagnostic panels per outcome: residual QQ, residuals vs fitted, random-intercept QQ, Cook's distance."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch
from scipy import stats

from pnitrial.report.figures.style import ARM_COLOURS, apply_style

MANY_POINTS = 5000  # beyond this many points or bars a panel is rasterised in PDF and SVG, which stay small


def _qq(ax, values: np.ndarray, title: str) -> None:
    """Normal QQ plot with the line through the quartiles (as R's qqline)."""
    v = np.sort(values[np.isfinite(values)])
    n = len(v)
    if n < 3:
        ax.text(0.5, 0.5, "too few values", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=8, loc="left")
        return
    a = 3 / 8 if n <= 10 else 0.5  # R's ppoints
    q = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.plot(q, v, "o", ms=3, color="#333333", alpha=0.8, rasterized=n > MANY_POINTS)
    y1, y2 = np.quantile(v, [0.25, 0.75])
    x1, x2 = stats.norm.ppf([0.25, 0.75])
    slope = (y2 - y1) / (x2 - x1)
    ax.axline((x1, y1), slope=slope, color="#b2182b", lw=0.9)
    ax.set_xlabel("normal quantile")
    ax.set_title(title, fontsize=8, loc="left")


def diagnostic_panels(
    label: str,
    fitted: np.ndarray,
    residuals: np.ndarray,
    random_effects: np.ndarray,
    cooks: np.ndarray,
    arms: np.ndarray,
    threshold: float,
    scale: str = "",
):
    """Four diagnostic panels of one fit; participants are shown by their arm's colour only, never by identifier.

    Conditional residuals against normal quantiles and against fitted values, random intercepts
    against normal quantiles (R's ppoints and qqline), and participants ranked by Cook's
    distance (Cook 1977, Technometrics 19:15) with the threshold drawn.

    Parameters
    ----------
    label : str
        The outcome's label, the figure's title.
    fitted, residuals : ndarray of float
        Fitted values and conditional residuals, one per observation.
    random_effects : ndarray of float
        Predicted random effects, participants x terms; the first column (the intercept) is plotted.
    cooks : ndarray of float
        Cook's distance of every participant.
    arms : ndarray of str
        Role of every participant (``'intervention'``, ``'control'``), for the colours.
    threshold : float
        The influence threshold drawn (4/m for m participants).
    scale : str
        The model scale's name (``'log'`` for a log-transformed outcome), named on the axes; empty
        for the raw scale.

    Returns
    -------
    Figure

    Examples
    --------
    >>> residuals = np.array([0.1, -0.2, 0.05, 0.3, -0.1, 0.0, -0.15, 0.2])
    >>> intercepts = np.array([[0.2], [-0.1], [0.3], [-0.4]])
    >>> arms = np.array(["intervention", "control", "intervention", "control"])
    >>> fig = diagnostic_panels("IL-6", np.linspace(1, 2, 8), residuals, intercepts, np.array([0.1, 0.5, 0.2, 0.05]),
    ...                         arms, threshold=1.0)
    >>> [ax.get_title(loc="left") for ax in fig.axes][:2]
    ['Conditional residuals, normal QQ', 'Residuals vs fitted']
    >>> from matplotlib.colors import to_hex
    >>> [to_hex(h.get_facecolor()) for h in fig.axes[3].get_legend().legend_handles]  # the bars' colours
    ['#762a83', '#1b7837']
    >>> plt.close(fig)
    """
    apply_style()
    fig, axes = plt.subplots(2, 2, figsize=(7.2, 5.6), layout="constrained")
    on = f" ({scale} scale)" if scale else ""
    _qq(axes[0, 0], residuals, "Conditional residuals, normal QQ")
    axes[0, 0].set_ylabel(f"residual{on}")
    ax = axes[0, 1]
    ax.plot(fitted, residuals, "o", ms=3, color="#333333", alpha=0.7, rasterized=len(fitted) > MANY_POINTS)
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"fitted value{on}")
    ax.set_ylabel(f"residual{on}")
    ax.set_title("Residuals vs fitted", fontsize=8, loc="left")
    _qq(axes[1, 0], random_effects[:, 0], "Random intercepts, normal QQ")
    axes[1, 0].set_ylabel(f"participant intercept{on}")
    ax = axes[1, 1]
    order = np.argsort(-np.nan_to_num(cooks, nan=-np.inf), kind="stable")
    colours = [ARM_COLOURS.get(a, "#7f7f7f") for a in arms[order]]
    # the bars as one collection: one artist whatever the number of participants (a bar() of 50,000
    # patches takes minutes), rasterised in vector formats when there are many
    x, h = np.arange(1, len(order) + 1, dtype=float), np.nan_to_num(cooks[order], nan=0.0)
    bars = PolyCollection(
        np.stack(
            [np.column_stack([x - 0.4, x - 0.4, x + 0.4, x + 0.4]), np.column_stack([0 * h, h, h, 0 * h])], axis=2
        ),
        facecolors=colours,
        linewidths=0,
        rasterized=len(order) > MANY_POINTS,
    )
    bars.sticky_edges.y.append(0.0)  # as bar(): the axis starts at zero
    ax.add_collection(bars)
    ax.autoscale_view()
    ax.axhline(threshold, color="#b2182b", lw=0.9, ls="--")
    # the legend's patches carry the bars' colours (an empty bar() gets the next cycle colour instead)
    handles = [Patch(color=ARM_COLOURS.get(role, "#7f7f7f"), label=role) for role in dict.fromkeys(arms[order])]
    ax.legend(handles=handles, fontsize=7, frameon=False)
    ax.set_xlabel("participants, ranked")
    ax.set_ylabel("Cook's distance")
    ax.set_title(f"Participant influence (line: 4/m = {threshold:.3g})", fontsize=8, loc="left")
    fig.suptitle(label, fontsize=9)
    return fig
