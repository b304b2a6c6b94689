"""A panel of many analytes in a wide table: validation and the pseudonymised panel frame.

The panel table has the codebook's participant and visit columns and one column per analyte
(e.g. Olink NPX). Arm and covariates come from the trial table, so every panel row must match
a trial-table row; columns the panel repeats from the trial table must agree with it, and columns
under `panel.ignore` (plate IDs, QC flags) are skipped. The frame written for the models is two
aligned files: the rows (code, role, visit, covariates) and the values (one column per analyte),
without identifiers.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Codebook
from pnitrial.data.longframe import base_rows
from pnitrial.data.table import (
    MISSING,
    NUMBER,
    Echo,
    columns_hint,
    duplicate_columns,
    file_lines,
    header_of,
    number_hint,
    read_table,
    rows_text,
)
from pnitrial.data.validate import EXTREME, validate_table
from pnitrial.errors import ValidationError

MAX_COLUMNS_SHOWN = 10


def _columns_text(cols: list[str]) -> str:
    shown = ", ".join(f"'{c}'" for c in cols[:MAX_COLUMNS_SHOWN])
    more = f" and {len(cols) - MAX_COLUMNS_SHOWN} more" if len(cols) > MAX_COLUMNS_SHOWN else ""
    return f"column{'s' if len(cols) > 1 else ''} {shown}{more}"


def repeated_columns(cb: Codebook, columns: Sequence[str], trial_columns: Sequence[str]) -> list[str]:
    """Panel columns that repeat a trial-table column (arm, covariates...): checked, never analysed.

    Parameters
    ----------
    cb : Codebook
        The codebook, with a panel.
    columns : sequence of str
        The panel table's columns.
    trial_columns : sequence of str
        The trial table's columns (participant and visit excepted).

    Returns
    -------
    list of str
        Panel columns also in the trial table, other than participant, visit, ignored columns and
        declared analytes, in panel order.

    Examples
    --------
    >>> from pnitrial.data.codebook import Panel
    >>> inflammation = Panel(Path("panel.csv"), "Inflammation panel", "NPX", "protein", "none", ignore=("plate",))
    >>> cb = Codebook(Path("dataset.yaml"), Path("trial.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...               ("pre", "post"), ("age",), (), panel=inflammation)
    >>> repeated_columns(cb, ["id", "visit", "age", "plate", "IL6", "TNF"], ["arm", "age"])
    ['age']
    """
    skip = {cb.participant, cb.visit, *cb.panel.ignore, *(cb.panel.analytes or ())}
    trial = set(trial_columns)
    return [c for c in dict.fromkeys(columns) if c in trial and c not in skip]


def panel_analytes(cb: Codebook, columns: Sequence[str] | pd.DataFrame, trial_columns: Sequence[str] = ()) -> list[str]:
    """The analyte columns of a panel table.

    They are `panel.analytes` when the codebook lists them, else every named column but participant,
    visit, the columns repeated from the trial table and `panel.ignore`.

    Parameters
    ----------
    cb : Codebook
        The codebook, with a panel.
    columns : sequence of str or DataFrame
        The panel table's columns (or the table).
    trial_columns : sequence of str, optional
        The trial table's columns, so that repeated ones are not taken for analytes.

    Returns
    -------
    list of str
        The analytes, in panel order.

    Examples
    --------
    >>> from pnitrial.data.codebook import Panel
    >>> inflammation = Panel(Path("panel.csv"), "Inflammation panel", "NPX", "protein", "none", ignore=("plate",))
    >>> cb = Codebook(Path("dataset.yaml"), Path("trial.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...               ("pre", "post"), ("age",), (), panel=inflammation)
    >>> panel_analytes(cb, ["id", "visit", "age", "plate", "IL6", "TNF"], ["arm", "age"])
    ['IL6', 'TNF']
    """
    if isinstance(columns, pd.DataFrame):
        columns = list(columns.columns)
    if cb.panel.analytes:
        return list(cb.panel.analytes)
    skip = {cb.participant, cb.visit, *cb.panel.ignore, *repeated_columns(cb, columns, trial_columns)}
    return [c for c in columns if c and c not in skip]


def header(path: str | Path) -> list[str]:
    r"""Column names of a CSV table (empty when it cannot be read: validation reports why).

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    list of str
        The cells of its first line.

    Examples
    --------
    >>> import tempfile
    >>> import yaml
    >>> from pnitrial.data.codebook import load_codebook
    >>> spec = {"table": "trial.csv", "columns": {"participant": "id", "arm": "arm", "visit": "visit"},
    ...         "arms": {"intervention": "A", "control": "B"}, "visits": ["pre", "post"],
    ...         "panel": {"table": "panel.csv", "unit": "NPX", "family": "protein", "transform": "none"}}
    >>> trial = ["id,arm,visit", "p1,A,pre", "p1,A,post", "p2,B,pre", "p2,B,post"]
    >>> panel = ["id,visit,IL6,TNF", "p2,pre,3.1,5.0", "p1,pre,2.9,4.2", "p1,post,,4.4", "p2,post,3.3,5.1"]
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name, lines in (("trial.csv", trial), ("panel.csv", panel)):
    ...     _ = (Path(tmp.name) / name).write_text("\n".join(lines) + "\n")
    >>> _ = (Path(tmp.name) / "dataset.yaml").write_text(yaml.safe_dump(spec))
    >>> cb = load_codebook(Path(tmp.name) / "dataset.yaml")
    >>> header(Path(tmp.name) / "panel.csv"), header(Path(tmp.name) / "no-such.csv")
    (['id', 'visit', 'IL6', 'TNF'], [])
    >>> tmp.cleanup()
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def analyte_count(cb: Codebook) -> int:
    r"""How many analytes the panel has, from the headers of the two tables (for scatter chunks).

    Parameters
    ----------
    cb : Codebook
        The codebook, with a panel.

    Returns
    -------
    int

    Examples
    --------
    >>> import tempfile
    >>> import yaml
    >>> from pnitrial.data.codebook import load_codebook
    >>> spec = {"table": "trial.csv", "columns": {"participant": "id", "arm": "arm", "visit": "visit"},
    ...         "arms": {"intervention": "A", "control": "B"}, "visits": ["pre", "post"],
    ...         "panel": {"table": "panel.csv", "unit": "NPX", "family": "protein", "transform": "none"}}
    >>> trial = ["id,arm,visit", "p1,A,pre", "p1,A,post", "p2,B,pre", "p2,B,post"]
    >>> panel = ["id,visit,IL6,TNF", "p2,pre,3.1,5.0", "p1,pre,2.9,4.2", "p1,post,,4.4", "p2,post,3.3,5.1"]
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name, lines in (("trial.csv", trial), ("panel.csv", panel)):
    ...     _ = (Path(tmp.name) / name).write_text("\n".join(lines) + "\n")
    >>> _ = (Path(tmp.name) / "dataset.yaml").write_text(yaml.safe_dump(spec))
    >>> cb = load_codebook(Path(tmp.name) / "dataset.yaml")
    >>> analyte_count(cb)
    2
    >>> tmp.cleanup()
    """
    return len(panel_analytes(cb, header(cb.panel.table), header(cb.table)))


def _same(panel: pd.Series, trial: pd.Series) -> np.ndarray:
    """Cells that agree: equal text, or equal numbers (48 and 48.0); an empty panel cell says nothing."""
    p, t = panel.str.strip().reset_index(drop=True), trial.str.strip().reset_index(drop=True)
    same = (p == t).to_numpy(dtype=bool) | p.isin(MISSING).to_numpy(dtype=bool)
    numbers = (p.str.fullmatch(NUMBER.pattern) & t.str.fullmatch(NUMBER.pattern)).to_numpy(dtype=bool)
    if numbers.any():
        equal = pd.to_numeric(p[numbers]).to_numpy() == pd.to_numeric(t[numbers]).to_numpy()
        same = same | np.isin(np.arange(len(p)), np.flatnonzero(numbers)[equal])
    return same


def parse_panel(cb: Codebook, trial: pd.DataFrame, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Check the panel table; return (trial-table row of each panel row, values (rows x analytes)).

    Every panel row must match a trial-table row by participant and visit, repeated columns must
    agree with the trial table, and analyte cells must be numbers (positive for a log panel) of a
    plausible size, or empty.

    Parameters
    ----------
    cb : Codebook
        The codebook, with a panel.
    trial : DataFrame
        The trial table (text cells), already validated.
    table : DataFrame
        The panel table as `read_table` returned it.

    Returns
    -------
    where : ndarray of int
        For each panel row, the row of the trial table with its participant and visit.
    values : ndarray of float
        The analyte values, rows x analytes; NaN where empty.

    Raises
    ------
    ValidationError
        Listing every problem of the panel table.

    Examples
    --------
    >>> from pnitrial.data.codebook import Panel
    >>> inflammation = Panel(Path("panel.csv"), "Inflammation panel", "NPX", "protein", "none", ignore=("plate",))
    >>> cb = Codebook(Path("dataset.yaml"), Path("trial.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...               ("pre", "post"), ("age",), (), panel=inflammation)
    >>> trial = pd.DataFrame({"id": ["p1", "p1", "p2", "p2"], "arm": ["A", "A", "B", "B"],
    ...                       "visit": ["pre", "post", "pre", "post"], "age": ["41", "41", "52", "52"]})
    >>> table = pd.DataFrame({"id": ["p2", "p1", "p1"], "visit": ["pre", "pre", "post"], "age": ["52", "41", "41"],
    ...                       "plate": ["1", "1", "2"], "IL6": ["3.1", "2.9", ""], "TNF": ["5.0", "4.2", "4.4"]})
    >>> where, values = parse_panel(cb, trial, table)
    >>> where.tolist(), values.tolist()
    ([2, 0, 1], [[3.1, 5.0], [2.9, 4.2], [nan, 4.4]])
    """
    path, panel = cb.panel.table, cb.panel
    lines = file_lines(table)

    def rows(index) -> str:
        return rows_text(index, lines)

    problems: list[str] = []
    absent = [c for c in (cb.participant, cb.visit) if c not in table.columns]
    if absent:
        what = "(the codebook's participant and visit columns)"
        hint = columns_hint(table, absent, known=absent, labels=cb.visits)
        raise ValidationError([f"{path}: missing {_columns_text(absent)} {what}{hint}"])
    trial_columns = [c for c in trial.columns if c not in (cb.participant, cb.visit)]
    analytes = panel_analytes(cb, table, trial_columns)
    repeated = repeated_columns(cb, table.columns, trial_columns)
    for key, names in (("panel/analytes", analytes), ("panel/ignore", list(panel.ignore))):
        missing = [a for a in names if a not in table.columns]
        if missing:
            problems.append(f"{path}: missing {_columns_text(missing)} (from codebook key {key})")
    if problems:
        raise ValidationError(problems)
    duplicate_columns(table, path, [c for c in header_of(table) if c], problems)
    if problems:
        raise ValidationError(problems)
    if not analytes:
        raise ValidationError(
            [f"{path}: no analyte columns besides '{cb.participant}', '{cb.visit}', repeated and ignored columns"]
        )
    if len(table) == 0:
        raise ValidationError(
            [f"{path}: the table has a header line but no data rows; expected one row per participant and visit"]
        )
    unnamed = [i + 1 for i, c in enumerate(header_of(table)) if not c]
    unnamed_values = [i for i in unnamed if (~table.iloc[:, i - 1].str.strip().isin(MISSING)).any()]
    if unnamed_values:
        problems.append(
            f"{path}: header column{'s' if len(unnamed_values) > 1 else ''} {', '.join(map(str, unnamed_values))} "
            "without a name but with values; expected every column that holds values to be named"
        )
    clash = sorted(set(analytes) & {o.key for o in cb.outcomes})
    if clash:
        problems.append(f"{path}: {_columns_text(clash)}: analyte names also used as outcome keys in the codebook")
    pid, visit = (table[c].str.strip() for c in (cb.participant, cb.visit))
    for name, col in ((cb.participant, pid), (cb.visit, visit)):
        empty = np.flatnonzero(col.isin(MISSING).to_numpy())
        if len(empty):
            problems.append(f"{path}: column '{name}', {rows(empty)}: expected a value, found an empty cell")
    dup = np.flatnonzero(pd.DataFrame({"p": pid, "v": visit}).duplicated(keep=False).to_numpy())
    if len(dup):
        problems.append(
            f"{path}: columns '{cb.participant}' x '{cb.visit}', {rows(dup)}: "
            "expected one row per participant and visit, found duplicates"
        )
    key = pd.MultiIndex.from_arrays([trial[cb.participant].str.strip(), trial[cb.visit].str.strip()])
    where = key.get_indexer(pd.MultiIndex.from_arrays([pid, visit]))
    unmatched = np.flatnonzero(where < 0)
    if len(unmatched):
        problems.append(
            f"{path}: columns '{cb.participant}' x '{cb.visit}', {rows(unmatched)}: expected a participant "
            f"and visit that has a row in the trial table {cb.table.name} (arm and covariates come from there)"
        )
    matched = np.flatnonzero(where >= 0)
    for c in repeated:
        same = _same(table[c].iloc[matched], trial[c].iloc[where[matched]])
        if not same.all():
            problems.append(
                f"{path}: column '{c}', {rows(matched[~same])}: expected the same value as the trial table "
                f"{cb.table.name} for this participant and visit (the column repeats a trial-table column; "
                "list it under the codebook key panel/ignore to skip it)"
            )
    cells = table[analytes].apply(lambda s: s.str.strip())
    present = ~cells.isin(MISSING).to_numpy()
    number = cells.apply(lambda s: s.str.fullmatch(NUMBER.pattern)).to_numpy(dtype=bool)
    values = cells.where(number).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(values)
    size = np.where(finite & (values != 0), np.abs(values), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an analyte without values has no median
        typical = np.nanmedian(size, axis=0) if len(size) else np.full(len(analytes), np.nan)
    echo = Echo(
        Echo.of(trial, cb.participant).private | Echo.of(table, cb.participant).private,
        Echo.of(trial, cb.participant).participants,
    )

    def not_number(j: int, mask: np.ndarray) -> str:
        found = cells.iloc[mask, j].tolist()
        ignore = " (not an analyte? list it under the codebook key panel/ignore)" if not number[:, j].any() else ""
        return f"expected a number or an empty cell; {echo.found(found)}{number_hint(found)}{ignore}"

    checks = (
        (present & ~number, not_number),
        (present & number & ~finite, lambda j, m: "expected a finite number, found a number too large for a double"),
        (
            (values <= 0) if panel.transform == "log" else None,
            lambda j, m: "expected a positive value (panel transform is log)",
        ),
        (
            finite & (np.abs(values) > EXTREME * typical),
            lambda j, m: (
                f"expected a plausible value: more than {EXTREME:,.0f} times the median size of this "
                f"analyte ({typical[j]:.3g}); check the units"
            ),
        ),
    )
    for mask, expect in checks:
        if mask is None or not mask.any():
            continue
        cols = np.flatnonzero(mask.any(axis=0))
        for j in cols[:MAX_COLUMNS_SHOWN]:
            bad = np.flatnonzero(mask[:, j])
            problems.append(f"{path}: column '{analytes[j]}', {rows(bad)}: {expect(j, bad)}")
        if len(cols) > MAX_COLUMNS_SHOWN:
            problems.append(f"{path}: {len(cols) - MAX_COLUMNS_SHOWN} more analyte columns with the same problem")
    if problems:
        raise ValidationError(problems)
    return where, np.where(finite, values, np.nan)


def build_panel_frame(cb: Codebook, min_per_arm: int = 3) -> tuple[pd.DataFrame, np.ndarray, dict]:
    r"""Validate the trial and panel tables; return (rows, values, panel metadata).

    Parameters
    ----------
    cb : Codebook
        The codebook, with a panel.
    min_per_arm : int, optional
        Fewest participants per trial arm (config validation.min_per_arm).

    Returns
    -------
    rows : DataFrame
        Pseudonymised code, role, visit and covariates of every panel row (see `base_rows`), sorted
        by participant and visit.
    values : ndarray of float
        The analyte values in the same order, rows x analytes; NaN where missing.
    meta : dict
        ``label``, ``unit``, ``family``, ``transform``, ``analytes``, ``n_rows`` and ``n_missing``.

    Raises
    ------
    ValidationError
        When either table does not match the codebook.

    Examples
    --------
    >>> import tempfile
    >>> import yaml
    >>> from pnitrial.data.codebook import load_codebook
    >>> spec = {"table": "trial.csv", "columns": {"participant": "id", "arm": "arm", "visit": "visit"},
    ...         "arms": {"intervention": "A", "control": "B"}, "visits": ["pre", "post"],
    ...         "panel": {"table": "panel.csv", "unit": "NPX", "family": "protein", "transform": "none"}}
    >>> trial = ["id,arm,visit", "p1,A,pre", "p1,A,post", "p2,B,pre", "p2,B,post"]
    >>> panel = ["id,visit,IL6,TNF", "p2,pre,3.1,5.0", "p1,pre,2.9,4.2", "p1,post,,4.4", "p2,post,3.3,5.1"]
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name, lines in (("trial.csv", trial), ("panel.csv", panel)):
    ...     _ = (Path(tmp.name) / name).write_text("\n".join(lines) + "\n")
    >>> _ = (Path(tmp.name) / "dataset.yaml").write_text(yaml.safe_dump(spec))
    >>> cb = load_codebook(Path(tmp.name) / "dataset.yaml")
    >>> rows, values, meta = build_panel_frame(cb, min_per_arm=1)
    >>> rows[["pid", "visit"]].to_dict("list")
    {'pid': [1, 1, 2, 2], 'visit': ['pre', 'post', 'pre', 'post']}
    >>> values.tolist(), meta["analytes"], meta["n_missing"]
    ([[2.9, 4.2], [nan, 4.4], [3.1, 5.0], [3.3, 5.1]], ['IL6', 'TNF'], 1)
    >>> tmp.cleanup()
    """
    trial = read_table(cb.table)
    validate_table(cb, trial, min_per_arm=min_per_arm)
    table = read_table(cb.panel.table, key="panel/table")
    where, values = parse_panel(cb, trial, table)
    base, _ = base_rows(cb, trial)
    rows = base.iloc[where].reset_index(drop=True)
    order = np.lexsort((rows["visit_index"].to_numpy(), rows["pid"].to_numpy()))
    rows, values = rows.iloc[order].reset_index(drop=True), values[order]
    analytes = panel_analytes(cb, table, [c for c in trial.columns if c not in (cb.participant, cb.visit)])
    p = cb.panel
    meta = {
        "label": p.label,
        "unit": p.unit,
        "family": p.family,
        "transform": p.transform,
        "analytes": analytes,
        "n_rows": len(rows),
        "n_missing": int(np.isnan(values).sum()),
    }
    return rows, values, meta


def write_panel(rows: pd.DataFrame, values: np.ndarray, meta: dict, out: dict[str, str | Path]) -> None:
    """Write the panel frame: rows and values as two aligned CSVs, and the metadata as JSON.

    Parameters
    ----------
    rows : DataFrame
        Code, role, visit and covariates of every row (`build_panel_frame`).
    values : ndarray of float
        The analyte values, rows x analytes.
    meta : dict
        The panel metadata; its ``analytes`` name the value columns.
    out : dict
        Paths under the keys ``'rows'``, ``'values'`` and ``'meta'``.

    Examples
    --------
    >>> import tempfile
    >>> rows = pd.DataFrame({"pid": [1, 1], "role": "control", "visit": ["pre", "post"]})
    >>> meta = {"label": "Panel", "unit": "NPX", "analytes": ["IL6", "TNF"]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = {k: Path(tmp) / f"panel_{k}" for k in ("rows", "values", "meta")}
    ...     write_panel(rows, np.array([[2.9, 4.2], [np.nan, 4.4]]), meta, out)
    ...     again = read_panel(out["rows"], out["values"], out["meta"], covariates={})
    >>> again[1].tolist(), again[2]["analytes"]
    ([[2.9, 4.2], [nan, 4.4]], ['IL6', 'TNF'])
    """
    rows.to_csv(out["rows"], index=False, lineterminator="\n", float_format=None)
    pd.DataFrame(values, columns=meta["analytes"]).to_csv(
        out["values"], index=False, lineterminator="\n", float_format=None
    )
    Path(out["meta"]).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_panel(rows_path: str | Path, values_path: str | Path, meta_path: str | Path, covariates: dict):
    """Read the panel frame that `write_panel` wrote.

    Parameters
    ----------
    rows_path, values_path, meta_path : str or Path
        The rows CSV, the values CSV and the metadata JSON.
    covariates : dict
        The trial's covariate kinds (``Trial.covariates``): categorical ones are read as text.

    Returns
    -------
    rows : DataFrame
        Code, role, visit and covariates of every row.
    values : ndarray of float
        The analyte values, rows x analytes.
    meta : dict
        The panel metadata.

    Examples
    --------
    >>> import tempfile
    >>> rows = pd.DataFrame({"pid": [1, 2], "role": "control", "visit": ["1", "1"], "site": ["01", "02"]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = {k: Path(tmp) / f"panel_{k}" for k in ("rows", "values", "meta")}
    ...     write_panel(rows, np.array([[2.9], [3.1]]), {"analytes": ["IL6"]}, out)
    ...     rows, values, meta = read_panel(out["rows"], out["values"], out["meta"], {"site": {"type": "categorical"}})
    >>> rows["visit"].tolist(), rows["site"].tolist(), values.shape
    (['1', '1'], ['01', '02'], (2, 1))
    """
    meta = json.loads(Path(meta_path).read_text())
    dtypes = {c: str for c, k in covariates.items() if k["type"] == "categorical"}
    rows = pd.read_csv(rows_path, dtype={"visit": str, "role": str, **dtypes})
    values = pd.read_csv(values_path, dtype=float).to_numpy()
    return rows, values, meta


def chunk_analytes(n_analytes: int, chunks: int, index: int) -> np.ndarray:
    """Column indices of one chunk of the analytes: contiguous, sizes differing by at most one.

    Parameters
    ----------
    n_analytes : int
        How many analytes the panel has.
    chunks : int
        How many chunks they are split into.
    index : int
        Which chunk (0-based).

    Returns
    -------
    ndarray of int

    Examples
    --------
    >>> chunk_analytes(10, 3, 0).tolist(), chunk_analytes(10, 3, 2).tolist()
    ([0, 1, 2, 3], [7, 8, 9])
    """
    return np.array_split(np.arange(n_analytes), chunks)[index]
