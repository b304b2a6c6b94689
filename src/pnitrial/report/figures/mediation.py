"""Path diagrams of the mediation analyses: arm -> mediator -> outcome, one small panel per pair."""

from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import pandas as pd

from pnitrial.analyses.mediation import B_PATH, INDIRECT, PATHS
from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import apply_style
from pnitrial.report.numbers import MINUS, effect_text

BOXES = {"x": (0.13, 0.2), "m": (0.5, 0.82), "y": (0.87, 0.2)}
# arrow end points clear of the boxes: arm -> mediator, mediator -> outcome, arm -> outcome
ARROWS = {("x", "m"): ((0.16, 0.33), (0.4, 0.7)), ("m", "y"): ((0.6, 0.7), (0.84, 0.33))}
ARROWS[("x", "y")] = ((0.3, 0.2), (0.7, 0.2))


def _estimate(rows: pd.DataFrame, path: str) -> str:
    r = rows[rows["path"] == path]
    if r.empty or pd.isna(r["estimate"].iloc[0]):
        return "n/a"
    r = r.iloc[0]
    return effect_text(r["estimate"], r["ci_low"], r["ci_high"], minus=MINUS)


def _arrow(ax, start: str, end: str, text: str, offset: tuple[float, float]) -> None:
    (x0, y0), (x1, y1) = ARROWS[(start, end)]
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "lw": 1.0})
    ax.text((x0 + x1) / 2 + offset[0], (y0 + y1) / 2 + offset[1], text, ha="center", va="center", fontsize=6.5)


def path_diagrams(table: pd.DataFrame, meta: Trial, arm_label: str) -> plt.Figure:
    """Path diagrams of the mediation analyses: a, b, c′ and the indirect effect a×b for every mediator-outcome pair.

    The paths are those of Baron & Kenny (1986, J Pers Soc Psychol 51:1173); the indirect effect
    carries its bootstrap CI (Preacher & Hayes 2008, Behav Res Methods 40:879). A pair whose
    analysis failed shows its status instead of arrows.

    Parameters
    ----------
    table : DataFrame
        The mediation table: ``mediator``, ``outcome``, ``path`` (``PATHS`` and ``B_PATH``),
        ``estimate``, ``ci_low``, ``ci_high`` and ``status``.
    meta : Trial
        The trial, for outcome labels.
    arm_label : str
        Label of the exposure box (the randomised arm).

    Returns
    -------
    Figure
        One panel per pair, three to a row; a one-line note when there are no pairs.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "score", "clinical", "none")
    >>> arms = {"intervention": "A", "control": "B", "healthy": None}
    >>> meta = Trial("demo", arms, ("pre", "post"), outcomes=(il6, pain))
    >>> table = pd.DataFrame({"mediator": "il6", "outcome": "pain", "path": [PATHS[0], B_PATH, PATHS[3], INDIRECT],
    ...                       "estimate": [0.3, -1.2, -0.8, -0.36], "ci_low": [0.1, -2.0, -2.1, -0.8],
    ...                       "ci_high": [0.5, -0.4, 0.5, -0.05], "status": "ok"})
    >>> fig = path_diagrams(table, meta, "A vs B")
    >>> len(fig.axes), fig.axes[0].texts[-1].get_text()
    (1, 'a×b = −0.360 [−0.800, −0.050]')
    >>> plt.close(fig)
    """
    apply_style()
    labels = {o.key: o.label for o in meta.outcomes}
    units = {o.key: f" (log {o.unit})" if o.is_log else (f" ({o.unit})" if o.unit else "") for o in meta.outcomes}
    pairs = list(dict.fromkeys(zip(table["mediator"], table["outcome"], strict=True)))
    if not pairs:
        fig, ax = plt.subplots(figsize=(4, 1), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, "No mediation pairs configured", ha="center", va="center")
        return fig
    ncol = min(3, len(pairs))
    nrow = math.ceil(len(pairs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.5 * nrow), layout="constrained", squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (mk, yk) in zip(axes.ravel(), pairs, strict=False):
        rows = table[(table["mediator"] == mk) & (table["outcome"] == yk)]
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        names = {
            "x": textwrap.fill(arm_label, 12),
            "m": textwrap.fill(f"change in {labels.get(mk, mk)}{units.get(mk, '')}", 22),
            "y": textwrap.fill(f"change in {labels.get(yk, yk)}{units.get(yk, '')}", 16),
        }
        n = rows["n_participants"].dropna() if "n_participants" in rows else pd.Series(dtype=float)
        if len(n):
            ax.set_title(f"n = {int(n.max())}", fontsize=6.5, loc="right")
        for k, (x, y) in BOXES.items():
            ax.text(x, y, names[k], ha="center", va="center", fontsize=7, bbox={"boxstyle": "round", "fc": "#f0f0f0"})
        status = rows["status"].iloc[0]
        if status != "ok":
            ax.text(0.5, 0.5, status, ha="center", va="center", fontsize=7, color="#b2182b")
            continue
        _arrow(ax, "x", "m", "a = " + _estimate(rows, PATHS[0]).replace(" [", "\n["), (-0.16, 0.03))
        _arrow(ax, "m", "y", "b = " + _estimate(rows, B_PATH).replace(" [", "\n["), (0.16, 0.03))
        _arrow(ax, "x", "y", "c\u2032 = " + _estimate(rows, PATHS[3]), (0.0, -0.09))
        ax.text(
            0.5, 0.0, "a\u00d7b = " + _estimate(rows, INDIRECT), ha="center", va="bottom", fontsize=7, weight="bold"
        )
    return fig
