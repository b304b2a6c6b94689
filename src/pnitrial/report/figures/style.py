"""The one figure style of pnitrial: colours, fonts, deterministic saving, and failure panels.

Figures are written without timestamps or software stamps so that their bytes repeat run to run;
a figure that cannot be drawn is saved as a panel that says why (a failed analysis is a panel).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pnitrial.failures import attempt  # noqa: E402

__all__ = ["ARM_COLOURS", "apply_style", "failed_panel", "plain_log_ticks", "plt", "save", "save_or_explain"]

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
    >>> plt.close(fig)
    """

    def minor(v: float, _pos) -> str:
        lo, hi = sorted(axis.get_view_interval())
        if v <= 0 or (lo > 0 and hi / lo > 100):
            return ""
        mantissa = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
        return f"{v:g}" if mantissa in (2.0, 5.0) else ""

    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


def save(fig: plt.Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150) -> list[str]:
    """Write fig as stem.<ext> for every format, without timestamps or software stamps, and close it.

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
    for ext in formats:
        path = f"{stem}.{ext}"
        fig.savefig(path, dpi=dpi, metadata=_METADATA[ext])
        paths.append(path)
    plt.close(fig)
    return paths


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
