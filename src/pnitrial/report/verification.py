"""Compare results/ with a committed expectation, and explain every difference.

An expectation is a directory: ``MANIFEST.sha256`` (the sha256 of every file of results/) and
``tables/`` (a copy of results/tables/*.csv). In ``bytes`` mode every file must have the expected
hash; in ``tolerance`` mode (for other BLAS builds, e.g. MKL) tables are compared cell by cell at
the tolerances below and figures by the tables they plot. Either way, a table that differs is
explained cell by cell: both values, their relative difference, and whether it is a last-digit
difference (floating-point noise at a rounding boundary) or a change in results.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.report.precision import cell_scales, rounding_step
from pnitrial.report.provenance import read_manifest

MODES = ("bytes", "tolerance")
# tolerance mode: what may differ beyond one unit in the last written digit (the R parity tolerances)
TOLERANCES: dict[str, tuple[str, float]] = {
    **dict.fromkeys(["df", "ddf", "n_eff"], ("relative", 1e-3)),
    **dict.fromkeys(
        ["p", "p_fdr", "p_model", "p_permutation", "p_permutation_adjusted", "p_adjusted"], ("absolute", 1e-6)
    ),
    "se": ("relative", 1e-5),
}
DEFAULT_TOLERANCE = ("relative", 1e-6)

# the tables each figure or document is drawn from (it differs because one of these does, or for its drawing)
DERIVED_FROM = {
    "tables/effects.": ["tables/effects.csv"],
    "tables/table1.": ["tables/table1.csv"],
    "tables/panel_top.": ["tables/panel_top.csv"],
    "summary.html": [
        "tables/effects.csv",
        "tables/fits.csv",
        "tables/lod_counts.csv",
        "tables/effect_sizes.csv",
        "tables/permutation.csv",
        "tables/sensitivity.csv",
        "tables/diagnostics.csv",
        "tables/mediation.csv",
        "tables/associations.csv",
        "tables/panel_top.csv",
    ],
    "figures/forest.": ["tables/effects.csv"],
    "figures/baseline_vs_healthy.": ["tables/baseline_vs_healthy.csv"],
    "figures/trajectory/": ["tables/emmeans.csv", "data/long.csv"],
    "figures/diagnostics/": ["tables/diagnostics.csv"],
    "figures/sensitivity/": ["tables/sensitivity.csv"],
    "figures/associations.": ["tables/associations.csv"],
    "figures/mediation.": ["tables/mediation.csv"],
    "figures/panel_volcano.": ["tables/panel_effects.csv"],
    "figures/panel_top.": ["tables/panel_effects.csv"],
}


@dataclass
class CellDifference:
    """One cell in which a table of results/ differs from its expectation, and what kind of difference it is.

    Parameters
    ----------
    row : int
        1-based data row of the CSV (its file line is row + 1).
    column : str
        The column.
    actual, expected : object
        The two values (floats when both parse as numbers, else the text as written).
    relative : float
        Relative difference, NaN for text.
    noise : bool
        Whether the difference is within one unit of the last written digit (floating-point noise at
        a rounding boundary) rather than a change in results.

    Examples
    --------
    >>> print(CellDifference(3, "p", 0.0123457, 0.0123456, 8.1e-6, True))
    row 3, column 'p': 0.0123457 (expected 0.0123456), relative difference 8.1e-06: last-digit difference (noise)
    """

    row: int  # 1-based data row of the CSV (file line row + 1)
    column: str
    actual: object
    expected: object
    relative: float
    noise: bool  # within one unit of the last written digit

    def __str__(self) -> str:
        kind = "last-digit difference (noise)" if self.noise else "change in results"
        rel = "" if not math.isfinite(self.relative) else f", relative difference {self.relative:.2g}"
        return f"row {self.row}, column {self.column!r}: {self.actual!r} (expected {self.expected!r}){rel}: {kind}"


def figure_inputs(name: str) -> list[str]:
    """The tables a figure or document of results/ is drawn from (empty for tables and intermediates).

    Parameters
    ----------
    name : str
        A file of results/, relative to it (``figures/forest.png``).

    Returns
    -------
    list of str
        The tables, from ``DERIVED_FROM``.

    Examples
    --------
    >>> figure_inputs("figures/trajectory/il6.png")
    ['tables/emmeans.csv', 'data/long.csv']
    >>> figure_inputs("tables/effects.csv")
    []
    """
    if name.endswith(".csv"):
        return []
    return next((tables for prefix, tables in DERIVED_FROM.items() if name.startswith(prefix)), [])


def _tolerance(column: str, value: float, scale: float) -> float:
    kind, tol = TOLERANCES.get(column, DEFAULT_TOLERANCE)
    size = max(abs(value), scale if math.isfinite(scale) else 0.0)
    return tol if kind == "absolute" else tol * size


def compare_tables(actual: str | Path, expected: str | Path, tolerance: bool = False) -> list[str]:
    r"""Differences between two CSV tables of results/, cell by cell; empty when none matter.

    Without ``tolerance`` every cell must be equal as written; with it, numbers may differ by
    one unit in the last written digit plus the column's tolerance (``TOLERANCES``).

    Parameters
    ----------
    actual, expected : str or Path
        The table of a run and the expected one.
    tolerance : bool, optional
        Compare numbers within tolerance rather than as written.

    Returns
    -------
    list of str
        One line per differing cell (see `CellDifference`), or one line when the columns or the
        number of rows differ.

    Examples
    --------
    >>> import contextlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("actual.csv").write_text("outcome,estimate,se\ncrp,0.123457,0.05\n")
    ...     _ = Path("expected.csv").write_text("outcome,estimate,se\ncrp,0.123456,0.05\n")
    ...     exact = compare_tables("actual.csv", "expected.csv")
    ...     within = compare_tables("actual.csv", "expected.csv", tolerance=True)
    >>> print(exact[0])
    row 1, column 'estimate': 0.123457 (expected 0.123456), relative difference 8.1e-06: last-digit difference (noise)
    >>> within
    []
    """
    a = pd.read_csv(actual, dtype=str, keep_default_na=False)
    e = pd.read_csv(expected, dtype=str, keep_default_na=False)
    if list(a.columns) != list(e.columns):
        return [f"columns differ: {list(a.columns)} (expected {list(e.columns)})"]
    if len(a) != len(e):
        return [f"{len(a)} rows (expected {len(e)})"]
    numeric = pd.read_csv(expected)
    scales = cell_scales(numeric)
    out: list[str] = []
    for col in a.columns:
        differ = np.flatnonzero((a[col] != e[col]).to_numpy())
        for i in differ:
            diff = _cell(a[col].iat[i], e[col].iat[i], col, scales.get(col, np.full(len(e), np.nan))[i], int(i))
            if not (tolerance and diff.noise is not None and _within(diff, col, scales, i)):
                out.append(str(diff))
    return out


def _cell(actual: str, expected: str, column: str, scale: float, i: int) -> CellDifference:
    try:
        x, y = float(actual), float(expected)
    except ValueError:
        return CellDifference(i + 1, column, actual, expected, math.nan, False)
    rel = abs(x - y) / abs(y) if y else math.inf
    step = rounding_step(y, scale)
    return CellDifference(i + 1, column, x, y, rel, abs(x - y) <= 1.01 * step)


def _within(diff: CellDifference, column: str, scales: dict[str, np.ndarray], i: int) -> bool:
    if not isinstance(diff.actual, float):
        return False
    y = float(diff.expected)
    scale = float(scales[column][i]) if column in scales else math.nan
    allowed = 1.01 * rounding_step(y, scale) + _tolerance(column, y, scale)
    return abs(diff.actual - y) <= allowed


def verify_results(results: str | Path, expected: str | Path, mode: str = "bytes", max_cells: int = 10) -> list[str]:
    r"""Every difference between results/ and an expectation directory, explained; empty when it verifies.

    Files are compared by their hashes; a table that differs is explained cell by cell
    (`compare_tables`) and a figure or document by the tables it is drawn from (`figure_inputs`).

    Parameters
    ----------
    results : str or Path
        The results directory of a finished run (holding MANIFEST.sha256).
    expected : str or Path
        The expectation directory (MANIFEST.sha256 and tables/, see `write_snapshot`), or a manifest.
    mode : {'bytes', 'tolerance'}, optional
        ``'bytes'``: every file must have the expected hash; ``'tolerance'``: tables may differ within
        ``TOLERANCES`` and figures when their tables do.
    max_cells : int, optional
        Most differing cells listed per table.

    Returns
    -------
    list of str
        One line per difference (cells indented under their table).

    Examples
    --------
    >>> import contextlib, tempfile
    >>> from pnitrial.report.provenance import write_manifest
    >>> def run(se):  # a stand-in for a workflow run: one table and the figure drawn from it
    ...     Path("results/tables").mkdir(parents=True, exist_ok=True)
    ...     Path("results/figures").mkdir(exist_ok=True)
    ...     _ = Path("results/tables/effects.csv").write_text(f"outcome,estimate,se\ncrp,0.12,{se}\n")
    ...     _ = Path("results/figures/forest.png").write_bytes(f"drawn from se {se}".encode())
    ...     files = ["results/tables/effects.csv", "results/figures/forest.png"]
    ...     write_manifest(files, "results", "results/MANIFEST.sha256")
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     run(se=0.05)
    ...     write_snapshot("results", "expected")
    ...     same = verify_results("results", "expected")
    ...     run(se=0.06)
    ...     diffs = verify_results("results", "expected")
    >>> same
    []
    >>> print("\n".join(diffs))
    differs: tables/effects.csv (1 cell(s))
        row 1, column 'se': 0.06 (expected 0.05), relative difference 0.2: change in results
    differs: figures/forest.png (its input tables/effects.csv differs)
    """
    if mode not in MODES:
        raise ValueError(f"verify.mode must be one of {MODES}, not {mode!r}")
    results, expected = Path(results), Path(expected)
    manifest = expected / "MANIFEST.sha256" if expected.is_dir() else expected
    tables = expected / "tables" if expected.is_dir() else None
    a, e = read_manifest(results / "MANIFEST.sha256"), read_manifest(manifest)
    out = [f"missing (expected but not produced): {k}" for k in sorted(e.keys() - a.keys())]
    out += [f"unexpected (produced but not in the expected manifest): {k}" for k in sorted(a.keys() - e.keys())]
    differing = {k for k in a.keys() & e.keys() if a[k] != e[k]}
    table_ok: dict[str, bool] = {}
    for name in sorted(differing):
        if not name.endswith(".csv") or tables is None or not (tables / Path(name).name).exists():
            continue
        cells = compare_tables(results / name, tables / Path(name).name, tolerance=mode == "tolerance")
        table_ok[name] = not cells
        if cells or mode == "bytes":
            shown = compare_tables(results / name, tables / Path(name).name) if not cells else cells
            out.append(f"differs: {name} ({len(shown)} cell(s))")
            out += [f"    {c}" for c in shown[:max_cells]]
            out += [f"    ... and {len(shown) - max_cells} more"] if len(shown) > max_cells else []
    for name in sorted(differing - table_ok.keys()):
        inputs = figure_inputs(name)
        if mode == "tolerance" and inputs and all(table_ok.get(t, t not in differing) for t in inputs):
            continue  # a figure of tables that agree within tolerance
        if inputs:
            changed = [t for t in inputs if t in differing]
            why = (
                f"its input {', '.join(changed)} differs"
                if changed
                else f"its input tables ({', '.join(inputs)}) are identical: the drawing itself differs"
            )
            out.append(f"differs: {name} ({why})")
        else:
            out.append(f"differs: {name}" + ("" if tables is not None else " (no expected tables to explain it)"))
    return out


def write_snapshot(results: str | Path, dest: str | Path) -> None:
    r"""Make ``dest`` the expectation of ``results``: its manifest and a copy of its tables (old tables removed).

    Parameters
    ----------
    results : str or Path
        The results directory of a finished run.
    dest : str or Path
        The expectation directory (created if needed).

    Examples
    --------
    >>> import contextlib, tempfile
    >>> from pnitrial.report.provenance import write_manifest
    >>> def run(se):  # a stand-in for a workflow run: one table and the figure drawn from it
    ...     Path("results/tables").mkdir(parents=True, exist_ok=True)
    ...     Path("results/figures").mkdir(exist_ok=True)
    ...     _ = Path("results/tables/effects.csv").write_text(f"outcome,estimate,se\ncrp,0.12,{se}\n")
    ...     _ = Path("results/figures/forest.png").write_bytes(f"drawn from se {se}".encode())
    ...     files = ["results/tables/effects.csv", "results/figures/forest.png"]
    ...     write_manifest(files, "results", "results/MANIFEST.sha256")
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     run(se=0.05)
    ...     write_snapshot("results", "expected")
    ...     files = sorted(p.relative_to("expected").as_posix() for p in Path("expected").rglob("*.*"))
    >>> files
    ['MANIFEST.sha256', 'tables/effects.csv']
    """
    results, dest = Path(results), Path(dest)
    (dest / "tables").mkdir(parents=True, exist_ok=True)
    for old in (dest / "tables").glob("*.csv"):
        old.unlink()
    shutil.copyfile(results / "MANIFEST.sha256", dest / "MANIFEST.sha256")
    for table in sorted((results / "tables").glob("*.csv")):
        shutil.copyfile(table, dest / "tables" / table.name)


def main(argv: list[str] | None = None) -> int:
    r"""``python -m pnitrial {snapshot,compare} RESULTS EXPECTED [--mode M]``: write or check an expectation.

    Parameters
    ----------
    argv : list of str, optional
        The command and its arguments; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 after a snapshot or when the results verify (printing ``verified``), 1 when they differ
        (printing every difference).

    Examples
    --------
    >>> import contextlib, tempfile
    >>> from pnitrial.report.provenance import write_manifest
    >>> def run(se):  # a stand-in for a workflow run: one table and the figure drawn from it
    ...     Path("results/tables").mkdir(parents=True, exist_ok=True)
    ...     Path("results/figures").mkdir(exist_ok=True)
    ...     _ = Path("results/tables/effects.csv").write_text(f"outcome,estimate,se\ncrp,0.12,{se}\n")
    ...     _ = Path("results/figures/forest.png").write_bytes(f"drawn from se {se}".encode())
    ...     files = ["results/tables/effects.csv", "results/figures/forest.png"]
    ...     write_manifest(files, "results", "results/MANIFEST.sha256")
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     run(se=0.05)
    ...     main(["snapshot", "results", "expected"])
    ...     main(["compare", "results", "expected"])
    0
    verified
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m pnitrial",
        description="Compare results/ with a committed expectation, or write one.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot", help="write RESULTS' manifest and tables into EXPECTED (refresh the expectation)")
    check = sub.add_parser("compare", help="compare RESULTS with EXPECTED and explain every difference")
    for p in (snap, check):
        p.add_argument("results", help="the results directory of a finished run (holding MANIFEST.sha256)")
        p.add_argument("expected", help="the expectation directory (MANIFEST.sha256 and tables/)")
    check.add_argument("--mode", choices=MODES, default="bytes", help="bytes (default) or tolerance")
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        write_snapshot(args.results, args.expected)
        return 0
    diffs = verify_results(args.results, args.expected, args.mode)
    print("\n".join(diffs) if diffs else "verified")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
