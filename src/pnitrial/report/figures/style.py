"""The one figure style of pnitrial: colours, fonts, deterministic saving, and failure panels.

Figures are written without timestamps or software stamps so that their bytes repeat run to run;
a figure that cannot be drawn is saved as a panel that says why (a failed analysis is a panel).
"""

from __future__ import annotations

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
    """The rcParams every pnitrial figure is drawn with (fixed SVG hash salt, embedded TrueType fonts)."""
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
    """Log-axis tick labels as plain numbers (10, 20, 50) rather than powers."""
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(fmt)


def save(fig: plt.Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150) -> list[str]:
    """Write fig as stem.<ext> for every format, without timestamps or software stamps, and close it."""
    paths = []
    for ext in formats:
        path = f"{stem}.{ext}"
        fig.savefig(path, dpi=dpi, metadata=_METADATA[ext])
        paths.append(path)
    plt.close(fig)
    return paths


def failed_panel(label: str, status: str) -> plt.Figure:
    """A figure that says what could not be drawn, and why (a failed analysis is a panel, not a crash)."""
    apply_style()
    fig, ax = plt.subplots(figsize=(7.2, 1.2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, f"{label}: not available ({status})", ha="center", va="center", fontsize=8, wrap=True)
    return fig


def save_or_explain(make, label: str, stem: str | Path, formats: tuple[str, ...], dpi: int) -> str | None:
    """Save the figure `make()` draws; if drawing fails, save a panel that says so. Returns the failure."""
    fig, failed = attempt(f"figure {Path(stem).name}", make)
    save(fig if failed is None else failed_panel(label, failed), stem, formats, dpi)
    return failed
