"""The one figure style of pnitrial: colours, fonts, deterministic saving, and failure panels.

Figures are written without timestamps or software stamps so that their bytes repeat run to run;
a figure that cannot be drawn is saved as a panel that says why (a failed analysis is a panel).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.text
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pnitrial.failures import attempt, log  # noqa: E402

__all__ = [
    "ARM_COLOURS",
    "apply_style",
    "failed_panel",
    "layout_problems",
    "plain_log_ticks",
    "plt",
    "save",
    "save_or_explain",
]

ARM_COLOURS = {"intervention": "#1b7837", "control": "#762a83", "healthy": "#7f7f7f"}
_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}


def apply_style() -> None:
    """Set the rcParams every pnitrial figure is drawn with (fixed SVG hash salt, embedded TrueType fonts).

    Examples
    --------
    >>> apply_style()
    >>> plt.rcParams["svg.hashsalt"], plt.rcParams["pdf.fonttype"], plt.rcParams["axes.spines.top"]
    ('pnitrial', 42, False)
    """
    plt.rcParams.update(
        {
            "svg.hashsalt": "pnitrial",
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "pdf.fonttype": 42,
        }
    )


def plain_log_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers (1, 2, 5, 10, 20, 50) rather than powers.

    Minor ticks are labelled only at 2 and 5 times a power of ten (a 1-2-5 sequence), so labels
    never crowd (not 6, 7, 8, 9); across more than two decades only the powers of ten are labelled.
    An axis spanning less than a factor of 3 (a sensitivity plot of ratios near 1.3) gets a few
    evenly spaced plain values instead, so it never shows a single label.

    Parameters
    ----------
    axis : matplotlib.axis.Axis
        The axis, e.g. ``ax.yaxis``; major and minor labels are set.

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> ax.set_yscale("log"); ax.set_ylim(0.5, 30)
    (0.5, 30)
    >>> plain_log_ticks(ax.yaxis)
    >>> minor = ax.yaxis.get_minor_formatter()
    >>> ax.yaxis.get_major_formatter()(10.0, 0), minor(20.0, 0), minor(0.5, 0), minor(7.0, 0)
    ('10', '20', '0.5', '')
    >>> ax.set_ylim(0.9, 1.6)
    (0.9, 1.6)
    >>> ax.yaxis.get_major_locator()()
    [1.0, 1.2, 1.4, 1.6]
    >>> plt.close(fig)
    """

    def minor(v: float, _pos) -> str:
        lo, hi = sorted(axis.get_view_interval())
        if v <= 0 or (lo > 0 and hi / lo > 100):
            return ""
        mantissa = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
        return f"{v:g}" if mantissa in (2.0, 5.0) else ""

    axis.set_major_locator(_NarrowLogLocator(axis, minor=False))
    axis.set_minor_locator(_NarrowLogLocator(axis, minor=True))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


class _NarrowLogLocator(matplotlib.ticker.Locator):
    """Log ticks; over less than a factor of 3 (no 1-2-5 value inside) evenly spaced plain values instead."""

    NARROW = 3.0

    def __init__(self, axis, minor: bool):
        self._axis, self._minor = axis, minor
        self._log = matplotlib.ticker.LogLocator(subs="auto" if minor else (1.0,))

    def __call__(self):
        lo, hi = sorted(self._axis.get_view_interval())
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((vmin, vmax))
        if lo > 0 and hi / lo < self.NARROW:
            if self._minor:
                return []
            ticks = matplotlib.ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            return [round(float(t), 12) for t in ticks if lo <= t <= hi]
        return self._log.tick_values(lo, hi)


def save(fig: plt.Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150) -> list[str]:
    """Write fig as stem.<ext> for every format, without timestamps or software stamps, and close it.

    A PNG's texts are checked by `layout_problems`; each overlap or text off the canvas is logged
    as a warning naming the figure.

    Parameters
    ----------
    fig : Figure
        The figure; it is closed afterwards.
    stem : str or Path
        Path of the files without extension.
    formats : tuple of str, optional
        Any of ``'png'``, ``'pdf'`` and ``'svg'``.
    dpi : int, optional
        Resolution of raster formats.

    Returns
    -------
    list of str
        The paths written.

    Examples
    --------
    >>> import os, tempfile
    >>> fig, ax = plt.subplots(figsize=(1, 1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = save(fig, os.path.join(tmp, "forest"), formats=("png", "svg"), dpi=20)
    ...     names = [os.path.basename(p) for p in paths]
    >>> names, plt.fignum_exists(fig.number)
    (['forest.png', 'forest.svg'], False)
    """
    paths = []
    # drawn at the figure's own dpi, so that after the PNG's draw every text sits where the PNG has it
    fig.set_dpi(dpi)
    for ext in formats:
        path = f"{stem}.{ext}"
        fig.savefig(path, dpi=dpi, metadata=_METADATA[ext])
        paths.append(path)
        if ext == "png":  # the layout check measures the raster draw (PDF draws at 72 dpi)
            for problem in layout_problems(fig):
                log.warning("figure %s: %s", Path(stem).name, problem)
        # the first save placed every axes: later formats reuse that layout instead of solving it
        # again, which costs an extra draw per format
        fig.set_layout_engine("none")
    plt.close(fig)
    return paths


def _drawn_texts(fig: plt.Figure) -> list[matplotlib.text.Text]:
    """The texts the last draw put on the canvas: non-empty, visible, tick labels only of ticks in view."""
    ticks = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            shown = ax.axison and ax.get_visible() and axis.get_visible()  # ax.axis("off") hides the ticks
            lo, hi = sorted(axis.get_view_interval())
            slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                in_view = lo - slack <= tick.get_loc() <= hi + slack
                for label in (tick.label1, tick.label2):
                    ticks[id(label)] = shown and in_view and label.get_visible()
    out = []
    for t in fig.findobj(matplotlib.text.Text):
        if not t.get_text().strip() or not t.get_visible() or not ticks.get(id(t), True):
            continue
        out.append(t)
    return out


def layout_problems(fig: plt.Figure) -> list[str]:
    """Texts that overlap one another or leave the canvas, as the last draw placed them.

    Parameters
    ----------
    fig : Figure
        A figure that has been drawn (saved): the texts are measured where that draw put them.

    Returns
    -------
    list of str
        One line per problem, naming the texts; empty for a clean figure.

    Examples
    --------
    >>> fig, ax = plt.subplots(figsize=(3, 2))
    >>> _ = ax.text(0.5, 0.5, "IL-6"), ax.text(0.52, 0.5, "TNF-a"), ax.text(1.5, 0.5, "far right")
    >>> fig.canvas.draw()
    >>> layout_problems(fig)
    ["'far right' leaves the canvas", "'IL-6' overlaps 'TNF-a'"]
    >>> plt.close(fig)
    """
    renderer = fig.canvas.get_renderer()
    texts = _drawn_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    canvas = fig.bbox
    problems = []
    for t, b in zip(texts, boxes, strict=True):
        if b.x0 < canvas.x0 - 1 or b.y0 < canvas.y0 - 1 or b.x1 > canvas.x1 + 1 or b.y1 > canvas.y1 + 1:
            problems.append(f"{t.get_text()!r} leaves the canvas")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = boxes[i], boxes[j]
            # overlapping by more than a pixel each way (touching glyph boxes are fine)
            if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
                if not _parallel_and_apart(texts[i], texts[j], fig.dpi):
                    problems.append(f"{texts[i].get_text()!r} overlaps {texts[j].get_text()!r}")
    return problems


def _parallel_and_apart(a: matplotlib.text.Text, b: matplotlib.text.Text, dpi: float) -> bool:
    """Two texts at the same slant (tilted tick labels), further apart across their direction than a line.

    The boxes of tilted texts overlap though the glyphs do not; parallel lines of text clash only
    when the distance between them, across the direction of writing, is less than a text height.
    """
    angle = a.get_rotation()
    if angle % 90 == 0 or angle != b.get_rotation():
        return False
    (xa, ya), (xb, yb) = a.get_transform().transform(a.get_position()), b.get_transform().transform(b.get_position())
    theta = math.radians(angle)
    across = abs((xb - xa) * math.sin(theta) - (yb - ya) * math.cos(theta))
    return across > max(a.get_fontsize(), b.get_fontsize()) * dpi / 72


def failed_panel(label: str, status: str) -> plt.Figure:
    """A figure that says what could not be drawn, and why (a failed analysis is a panel, not a crash).

    Parameters
    ----------
    label : str
        What the figure would have shown.
    status : str
        Why it was not drawn (a ``'failed: ...'`` status).

    Returns
    -------
    Figure

    Examples
    --------
    >>> fig = failed_panel("IL-6 trajectory", "failed: no values at post")
    >>> fig.axes[0].texts[0].get_text()
    'IL-6 trajectory: not available (failed: no values at post)'
    >>> plt.close(fig)
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(7.2, 1.2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, f"{label}: not available ({status})", ha="center", va="center", fontsize=8, wrap=True)
    return fig


def save_or_explain(make, label: str, stem: str | Path, formats: tuple[str, ...], dpi: int) -> str | None:
    """Save the figure `make()` draws; if drawing fails, save a panel that says so. Returns the failure.

    Parameters
    ----------
    make : callable
        Draws and returns the figure; called without arguments.
    label : str
        What the figure shows, for the failure panel.
    stem : str or Path
        Path of the files without extension.
    formats : tuple of str
        Formats to write (see `save`).
    dpi : int
        Resolution of raster formats.

    Returns
    -------
    str or None
        None when the figure was drawn, else its ``'failed: ...'`` status (the traceback is logged).

    Examples
    --------
    >>> import os, tempfile
    >>> def make():
    ...     raise ValueError("no values at post")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     status = save_or_explain(make, "IL-6 trajectory", os.path.join(tmp, "il6"), ("png",), dpi=20)
    ...     written = os.listdir(tmp)
    >>> status, written
    ('failed: no values at post', ['il6.png'])
    """
    fig, failed = attempt(f"figure {Path(stem).name}", make)
    save(fig if failed is None else failed_panel(label, failed), stem, formats, dpi)
    return failed
