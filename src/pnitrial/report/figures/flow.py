"""The CONSORT 2010 participant-flow diagram, drawn from the flow table (`pnitrial.report.flow`).

Enrolment (when the codebook gives ``enrolled``) -> randomised -> one column per arm: allocated,
measured / missing per visit and outcome family (a compact table, so twelve visits read as easily
as one), analysed under the primary estimand. Healthy controls, who are not randomised, sit in a
side box. Boxes are sized from the measured width of their texts, so no text leaves its box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.colors
import matplotlib.patches
import pandas as pd

from pnitrial.data.codebook import TRIAL_ROLES
from pnitrial.data.trial import Trial
from pnitrial.report.figures.style import ARM_COLOURS, apply_style, plt
from pnitrial.report.flow import is_primary
from pnitrial.report.tables import ESTIMAND_LABELS

__all__ = ["flow_diagram"]

FONT = 8.0  # points
LINE = FONT * 1.5 / 72  # inches from one line of a box to the next
PAD = 0.09  # inches between a box's edge and its texts
CELL_GAP = 0.18  # inches between the columns of a box's table
COLUMN_GAP = 0.45  # inches between the arm columns (and before a side box)
TIER_GAP = 0.3  # inches between tiers, room for the arrows
MARGIN = 0.12  # inches around the drawing
BANNER = "#dbe6f1"  # CONSORT's stage labels
EDGE = "#4d4d4d"


@dataclass
class _Box:
    """A box of the diagram: centred title lines, then an optional table (header row and body rows)."""

    key: str
    titles: list[str]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    header: tuple[str, ...] | None = None
    role: str | None = None
    banner: bool = False
    # set by the layout (inches): lower left corner, size, column widths of the table
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    widths: list[float] = field(default_factory=list)

    @property
    def n_lines(self) -> int:
        return len(self.titles) + len(self.rows) + (self.header is not None)


class _Measure:
    """Widths of texts in inches, as the figure's renderer sets them."""

    def __init__(self, fig):
        self.fig, self.renderer = fig, fig.canvas.get_renderer()
        self.cache: dict[tuple[str, str, str], float] = {}

    def __call__(self, text: str, weight: str = "normal", style: str = "normal") -> float:
        key = (text, weight, style)
        if key not in self.cache:
            t = self.fig.text(0, 0, text, fontsize=FONT, fontweight=weight, fontstyle=style)
            self.cache[key] = t.get_window_extent(self.renderer).width / self.fig.dpi
            t.remove()
        return self.cache[key]


def _size(box: _Box, measure: _Measure) -> None:
    """The box's natural width and height from its texts."""
    table = [*([box.header] if box.header else []), *box.rows]
    ncol = max((len(r) for r in table), default=0)
    box.widths = [
        max((measure(r[j], style="italic" if r is box.header else "normal") for r in table if j < len(r)), default=0)
        for j in range(ncol)
    ]
    table_w = sum(box.widths) + CELL_GAP * max(ncol - 1, 0)
    title_w = max((measure(t, weight="bold" if i == 0 else "normal") for i, t in enumerate(box.titles)), default=0)
    box.w = max(table_w, title_w) + 2 * PAD
    box.h = box.n_lines * LINE + 2 * PAD - (LINE - FONT * 1.25 / 72)


def _count(n, n_max=None) -> str:
    if n is None or pd.isna(n):
        return "not estimated"
    if n_max is None or pd.isna(n_max) or int(n_max) == int(n):
        return f"{int(n)}"
    return f"{int(n)}\u2013{int(n_max)}"


def _n(table: pd.DataFrame, stage: str, **where) -> int | None:
    rows = table[table["stage"] == stage]
    for k, v in where.items():
        rows = rows[rows[k] == v]
    return None if rows.empty else int(rows["n"].iloc[0])


def _visit_label(meta: Trial, visit: str) -> str:
    return f"{visit} (baseline)" if visit == meta.baseline and "baseline" not in visit.lower() else visit


def _measured_rows(table: pd.DataFrame, meta: Trial, arm: str, families: list[str]) -> list[tuple[str, ...]]:
    """One line per visit with measured / missing per family."""
    rows = []
    for visit in meta.visits:
        cells = []
        for family in families:
            seen = _n(table, "measured", arm=arm, visit=visit, family=family)
            gone = _n(table, "missing", arm=arm, visit=visit, family=family)
            cells.append("" if seen is None else f"{seen} / {gone}")
        if any(cells):
            rows.append((_visit_label(meta, visit), *cells))
    return rows


def _analysed_rows(table: pd.DataFrame, arm: str, families: list[str]) -> list[tuple[str, ...]]:
    """One line per family and primary estimand: its label and the participants analysed."""
    rows = []
    analysed = table[(table["stage"] == "analysed") & (table["arm"] == arm)]
    primary = analysed[analysed["primary"].map(is_primary).astype(bool)]
    for family in families:
        for r in primary[primary["family"] == family].itertuples():
            label = ESTIMAND_LABELS.get(r.estimand, r.estimand)
            where = f" at {r.visit}" if r.visit else ""
            rows.append((f"{family}: {label}{where}", _count(r.n, r.n_max)))
    return rows


def _boxes(table: pd.DataFrame, meta: Trial) -> tuple[dict[str, _Box], list[list[str]]]:
    """Every box of the diagram with its text, and the tiers (rows of boxes, top to bottom)."""
    families = list(dict.fromkeys(f for f in table.loc[table["stage"] == "measured", "family"]))
    header = ("", *families) if len(families) > 1 else ("", f"{families[0]}") if families else None
    boxes: dict[str, _Box] = {}
    tiers: list[list[str]] = []
    enrolled = _n(table, "enrolled")
    if enrolled is not None:
        boxes["enrolled"] = _Box("enrolled", [f"Assessed for eligibility (n = {enrolled})"])
        boxes["excluded"] = _Box("excluded", [f"Not randomised (n = {_n(table, 'not_randomised')})"])
        tiers += [["enrolled"], ["excluded"]]
    arms = {role: meta.arms[role] for role in TRIAL_ROLES}
    total = sum(_n(table, "randomised", arm=a) or 0 for a in arms.values())
    boxes["randomised"] = _Box("randomised", [f"Randomised (n = {total})"])
    tiers.append(["randomised"])
    healthy = meta.arms.get("healthy")
    n_healthy = _n(table, "healthy_enrolled", arm=healthy) if healthy is not None else None
    if n_healthy is not None:
        rows = _measured_rows(table, meta, healthy, families)
        plain = healthy.strip().lower() in ("healthy", "healthy controls")
        name = "Healthy controls" + ("" if plain else f": {healthy}")
        titles = [f"{name} (n = {n_healthy})", "not randomised; measured / missing"]
        boxes["healthy"] = _Box("healthy", titles, rows, header if rows else None, role="healthy")
        tiers[-1].append("healthy")
    allocated, measured, analysed = [], [], []
    for role, arm in arms.items():
        n = _n(table, "randomised", arm=arm)
        boxes[f"allocated:{role}"] = _Box(f"allocated:{role}", [f"Allocated to {arm}", f"(n = {n})"], role=role)
        rows = _measured_rows(table, meta, arm, families)
        boxes[f"measured:{role}"] = _Box(f"measured:{role}", ["Measured / missing by visit"], rows, header, role=role)
        rows = _analysed_rows(table, arm, families) or [("not analysed",)]
        boxes[f"analysed:{role}"] = _Box(f"analysed:{role}", ["Analysed (primary estimand)"], rows, role=role)
        allocated.append(f"allocated:{role}")
        measured.append(f"measured:{role}")
        analysed.append(f"analysed:{role}")
    tiers += [allocated, measured, analysed]
    return boxes, tiers


def _layout(boxes: dict[str, _Box], tiers: list[list[str]], banners: dict[str, _Box]) -> tuple[float, float]:
    """Place every box (inches from the lower left corner); returns the figure's width and height."""
    column = max(boxes[k].w for k in boxes if ":" in k)
    for k in boxes:
        if ":" in k:
            boxes[k].w = column
    left = MARGIN + max(b.w for b in banners.values()) + COLUMN_GAP / 2
    centre = left + column + COLUMN_GAP / 2
    heights = [max(boxes[k].h for k in tier) for tier in tiers]
    height = 2 * MARGIN + sum(heights) + TIER_GAP * (len(tiers) - 1)
    top = height - MARGIN
    for tier, h in zip(tiers, heights, strict=True):
        for k in tier:
            b = boxes[k]
            b.y = top - b.h
            if k.startswith(("allocated", "measured", "analysed")):
                b.h = h  # an arm's boxes of one tier are the same size
                b.y = top - h
                b.x = left if k.endswith(TRIAL_ROLES[0]) else centre + COLUMN_GAP / 2
            elif k == "excluded":
                b.x = centre + COLUMN_GAP / 2
                b.y = top - h / 2 - b.h / 2
            elif k == "healthy":
                b.x = max(boxes["randomised"].x + boxes["randomised"].w, centre) + COLUMN_GAP
            else:
                b.x = centre - b.w / 2
        top -= h + TIER_GAP
    width = MARGIN + max(b.x + b.w for b in boxes.values())
    # stage banners: Enrolment over the tiers down to randomisation, then one per arm tier
    spans = {"Enrolment": tiers[: len(tiers) - 3], "Allocation": [tiers[-3]], "Follow-up": [tiers[-2]]}
    spans["Analysis"] = [tiers[-1]]
    for name, b in banners.items():
        keys = [k for tier in spans[name] for k in tier]
        lo = min(boxes[k].y for k in keys)
        hi = max(boxes[k].y + boxes[k].h for k in keys)
        b.x, b.y, b.h = MARGIN, lo, hi - lo
    return width, height


def _draw_box(ax, b: _Box) -> None:
    colour = ARM_COLOURS.get(b.role, EDGE) if b.role else EDGE
    face = BANNER if b.banner else matplotlib.colors.to_rgba(colour, 0.06 if b.role else 0.0)
    patch = matplotlib.patches.FancyBboxPatch(
        (b.x, b.y), b.w, b.h, boxstyle="round,pad=0,rounding_size=0.04", fc=face, ec=colour if not b.banner else BANNER
    )
    patch.set_linewidth(0.9)
    patch.set_gid(b.key)
    ax.add_patch(patch)
    cx = b.x + b.w / 2
    if b.banner:
        ax.text(cx, b.y + b.h / 2, b.titles[0], ha="center", va="center", fontsize=FONT, fontweight="bold", gid=b.key)
        return
    y = b.y + b.h - PAD
    colour_title = ARM_COLOURS[b.role] if b.role in TRIAL_ROLES else "black"
    for i, t in enumerate(b.titles):
        weight = "bold" if i == 0 else "normal"
        ax.text(cx, y, t, ha="center", va="top", fontsize=FONT, fontweight=weight, color=colour_title, gid=b.key)
        y -= LINE
    table_w = sum(b.widths) + CELL_GAP * max(len(b.widths) - 1, 0)
    x0 = cx - table_w / 2
    for r in [*([b.header] if b.header else []), *b.rows]:
        x = x0
        style = "italic" if r is b.header else "normal"
        grey = "#555555" if r is b.header else "black"
        for j, cell in enumerate(r):
            if cell:
                right = j > 0 or len(r) == 1
                at = x + b.widths[j] if right and len(r) > 1 else (cx if len(r) == 1 else x)
                ha = "center" if len(r) == 1 else ("right" if right else "left")
                ax.text(at, y, cell, ha=ha, va="top", fontsize=FONT, fontstyle=style, color=grey, gid=b.key)
            x += b.widths[j] + CELL_GAP
        y -= LINE


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    props = {"arrowstyle": "-|>", "lw": 0.8, "color": EDGE, "shrinkA": 0, "shrinkB": 0, "mutation_scale": 8}
    ax.annotate("", xy=end, xytext=start, arrowprops=props)


def _line(ax, xs: list[float], ys: list[float]) -> None:
    ax.plot(xs, ys, color=EDGE, lw=0.8, solid_capstyle="butt")


def _connect(ax, boxes: dict[str, _Box]) -> None:
    """CONSORT's arrows: enrolment down to randomisation (the excluded branching off), then each arm down."""
    r = boxes["randomised"]
    cx = r.x + r.w / 2
    if "enrolled" in boxes:
        e, x = boxes["enrolled"], boxes["excluded"]
        _arrow(ax, (cx, e.y), (cx, r.y + r.h))
        _arrow(ax, (cx, x.y + x.h / 2), (x.x, x.y + x.h / 2))
    alloc = [boxes[f"allocated:{role}"] for role in TRIAL_ROLES]
    split = alloc[0].y + alloc[0].h + TIER_GAP / 2  # in the gap under the tier (a healthy box may reach lower)
    _line(ax, [cx, cx], [r.y, split])
    centres = [b.x + b.w / 2 for b in alloc]
    _line(ax, [centres[0], centres[1]], [split, split])
    for role, c in zip(TRIAL_ROLES, centres, strict=True):
        _arrow(ax, (c, split), (c, boxes[f"allocated:{role}"].y + boxes[f"allocated:{role}"].h))
        for upper, lower in (("allocated", "measured"), ("measured", "analysed")):
            u, d = boxes[f"{upper}:{role}"], boxes[f"{lower}:{role}"]
            _arrow(ax, (c, u.y), (c, d.y + d.h))


def flow_diagram(table: pd.DataFrame, meta: Trial) -> plt.Figure:
    """The CONSORT 2010 flow diagram of a trial from its flow table.

    Enrolment (assessed for eligibility and not randomised, when the codebook gives ``enrolled``),
    randomised, and one column per arm: allocated, participants measured / missing at every visit
    for each outcome family, and analysed under the primary estimand of each family (a range over
    the family's outcomes when they differ). Healthy controls are a side box beside randomisation.

    Parameters
    ----------
    table : DataFrame
        The flow table (`pnitrial.report.flow.flow_table`, or its CSV read back).
    meta : Trial
        The trial, for arm and visit labels.

    Returns
    -------
    Figure
        Sized to its boxes (inches follow the text); every text lies inside its box.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> from pnitrial.report.flow import flow_table
    >>> frame, trial = toy_trial(n=6)
    >>> fig = flow_diagram(flow_table(frame, trial), trial)
    >>> [t.get_text() for t in fig.axes[0].texts if t.get_gid() in ("randomised", "allocated:intervention")]
    ['Randomised (n = 6)', 'Allocated to MBPM', '(n = 3)']
    >>> plt.close(fig)
    """
    apply_style()
    fig = plt.figure(figsize=(7.0, 5.0))
    measure = _Measure(fig)
    boxes, tiers = _boxes(table, meta)
    banners = {s: _Box(f"stage:{s}", [s], banner=True) for s in ("Enrolment", "Allocation", "Follow-up", "Analysis")}
    for b in [*boxes.values(), *banners.values()]:
        _size(b, measure)
    for b in banners.values():
        b.w = max(s.w for s in banners.values())
    width, height = _layout(boxes, tiers, banners)
    fig.set_size_inches(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    for b in [*banners.values(), *boxes.values()]:
        _draw_box(ax, b)
    _connect(ax, boxes)
    return fig
