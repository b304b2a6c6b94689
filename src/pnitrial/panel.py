"""A panel of many analytes in a wide table: validation and the pseudonymised panel frame.

The panel table has the codebook's participant and visit columns and one column per analyte
(e.g. Olink NPX). Arm and covariates come from the trial table, so every panel row must match
a trial-table row. The frame written for the models is two aligned files: the rows (code,
role, visit, covariates) and the values (one column per analyte), without identifiers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .codebook import Codebook
from .errors import ValidationError
from .longframe import base_rows
from .validate import MISSING, read_table, rows_text, validate_table

MAX_COLUMNS_SHOWN = 10


def _columns_text(cols: list[str]) -> str:
    shown = ", ".join(f"'{c}'" for c in cols[:MAX_COLUMNS_SHOWN])
    more = f" and {len(cols) - MAX_COLUMNS_SHOWN} more" if len(cols) > MAX_COLUMNS_SHOWN else ""
    return f"column{'s' if len(cols) > 1 else ''} {shown}{more}"


def panel_analytes(cb: Codebook, table: pd.DataFrame) -> list[str]:
    keys = (cb.participant, cb.visit)
    return list(cb.panel.analytes) if cb.panel.analytes else [c for c in table.columns if c not in keys]


def parse_panel(cb: Codebook, trial: pd.DataFrame, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Check the panel table; return (trial-table row of each panel row, values (rows x analytes))."""
    path, panel = cb.panel.table, cb.panel
    problems: list[str] = []
    absent = [c for c in (cb.participant, cb.visit) if c not in table.columns]
    if absent:
        what = "(the codebook's participant and visit columns)"
        raise ValidationError([f"{path}: missing {_columns_text(absent)} {what}"])
    analytes = panel_analytes(cb, table)
    missing = [a for a in analytes if a not in table.columns]
    if missing:
        problems.append(f"{path}: missing {_columns_text(missing)} (from codebook key panel/analytes)")
        raise ValidationError(problems)
    if not analytes:
        raise ValidationError([f"{path}: no analyte columns besides '{cb.participant}' and '{cb.visit}'"])
    if len(table) == 0:
        raise ValidationError([f"{path}: the table has no data rows"])
    clash = sorted(set(analytes) & {o.key for o in cb.outcomes})
    if clash:
        problems.append(f"{path}: {_columns_text(clash)}: analyte names also used as outcome keys in the codebook")
    pid, visit = (table[c].str.strip() for c in (cb.participant, cb.visit))
    for name, col in ((cb.participant, pid), (cb.visit, visit)):
        empty = np.flatnonzero(col.isin(MISSING).to_numpy())
        if len(empty):
            problems.append(f"{path}: column '{name}', {rows_text(empty)}: expected a value, found an empty cell")
    dup = np.flatnonzero(pd.DataFrame({"p": pid, "v": visit}).duplicated(keep=False).to_numpy())
    if len(dup):
        problems.append(
            f"{path}: columns '{cb.participant}' x '{cb.visit}', {rows_text(dup)}: "
            "expected one row per participant and visit, found duplicates"
        )
    key = pd.MultiIndex.from_arrays([trial[cb.participant].str.strip(), trial[cb.visit].str.strip()])
    where = key.get_indexer(pd.MultiIndex.from_arrays([pid, visit]))
    unmatched = np.flatnonzero(where < 0)
    if len(unmatched):
        problems.append(
            f"{path}: columns '{cb.participant}' x '{cb.visit}', {rows_text(unmatched)}: expected a participant "
            f"and visit that has a row in the trial table {cb.table.name} (arm and covariates come from there)"
        )
    cells = table[analytes].apply(lambda s: s.str.strip())
    present = ~cells.isin(MISSING)
    values = cells.where(present).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad_cells = present.to_numpy() & ~np.isfinite(values)
    for expect, mask in (
        ("a number or an empty cell", bad_cells),
        ("a positive value (panel transform is log)", (values <= 0) if panel.transform == "log" else None),
    ):
        if mask is None or not mask.any():
            continue
        cols = np.flatnonzero(mask.any(axis=0))
        for j in cols[:MAX_COLUMNS_SHOWN]:
            where_bad = rows_text(np.flatnonzero(mask[:, j]))
            problems.append(f"{path}: column '{analytes[j]}', {where_bad}: expected {expect}")
        if len(cols) > MAX_COLUMNS_SHOWN:
            problems.append(f"{path}: {len(cols) - MAX_COLUMNS_SHOWN} more analyte columns with the same problem")
    if problems:
        raise ValidationError(problems)
    return where, np.where(np.isfinite(values), values, np.nan)


def build_panel_frame(cb: Codebook, min_per_arm: int = 3) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Validate the trial and panel tables; return (rows, values, panel metadata)."""
    trial = read_table(cb.table)
    validate_table(cb, trial, min_per_arm=min_per_arm)
    table = read_table(cb.panel.table)
    where, values = parse_panel(cb, trial, table)
    base, _ = base_rows(cb, trial)
    rows = base.iloc[where].reset_index(drop=True)
    order = np.lexsort((rows["visit_index"].to_numpy(), rows["pid"].to_numpy()))
    rows, values = rows.iloc[order].reset_index(drop=True), values[order]
    analytes = panel_analytes(cb, table)
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
    rows.to_csv(out["rows"], index=False, lineterminator="\n", float_format=None)
    pd.DataFrame(values, columns=meta["analytes"]).to_csv(
        out["values"], index=False, lineterminator="\n", float_format=None
    )
    Path(out["meta"]).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_panel(rows_path: str | Path, values_path: str | Path, meta_path: str | Path, covariates: dict):
    meta = json.loads(Path(meta_path).read_text())
    dtypes = {c: str for c, k in covariates.items() if k["type"] == "categorical"}
    rows = pd.read_csv(rows_path, dtype={"visit": str, "role": str, **dtypes})
    values = pd.read_csv(values_path, dtype=float).to_numpy()
    return rows, values, meta


def chunk_analytes(n_analytes: int, chunks: int, index: int) -> np.ndarray:
    """Column indices of one chunk: contiguous, sizes differing by at most one."""
    return np.array_split(np.arange(n_analytes), chunks)[index]
