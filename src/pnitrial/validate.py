"""Validation of a trial table against its codebook.

Every check collects its failures; one ValidationError lists them all, each naming
the file, the column, the rows (1-based data rows and file lines) and what was
expected. Participant identifiers are never echoed: rows are named by number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .codebook import Codebook, Outcome
from .errors import ValidationError

MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "."})
_BELOW = re.compile(r"^<\s*(LOD|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$", re.IGNORECASE)
MAX_ROWS_SHOWN = 10


def rows_text(index: np.ndarray | list[int]) -> str:
    """'rows 3, 7 (lines 4, 8)' for 0-based data-row indices."""
    idx = sorted(int(i) for i in index)
    shown = idx[:MAX_ROWS_SHOWN]
    more = f" and {len(idx) - len(shown)} more" if len(idx) > len(shown) else ""
    word = "row" if len(idx) == 1 else "rows"
    rows = ", ".join(str(i + 1) for i in shown)
    lines = ", ".join(str(i + 2) for i in shown)
    return f"{word} {rows}{more} (file line{'s' if len(idx) > 1 else ''} {lines})"


def read_table(path: Path) -> pd.DataFrame:
    """Read every cell as text so validation sees exactly what the file holds."""
    if not path.exists():
        raise ValidationError([f"{path}: table file not found (named by the codebook key 'table')"])
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationError([f"{path}: cannot be read as CSV: {exc}"]) from None


@dataclass
class ParsedOutcome:
    value: np.ndarray  # raw-scale numbers; NaN where missing or censored
    censored: np.ndarray  # below LOD
    lod: np.ndarray  # the LOD that applies to a censored cell (NaN elsewhere)


def parse_outcome(cells: pd.Series, outcome: Outcome) -> tuple[ParsedOutcome, dict[str, list[int]]]:
    """Numbers, below-LOD markers and missing cells; returns problems by kind."""
    n = len(cells)
    value = np.full(n, np.nan)
    censored = np.zeros(n, dtype=bool)
    lod = np.full(n, np.nan)
    bad: dict[str, list[int]] = {}
    for i, raw in enumerate(cells.tolist()):
        cell = raw.strip()
        if cell in MISSING:
            continue
        m = _BELOW.match(cell)
        if m:
            if outcome.lod is None:
                bad.setdefault("marker_without_lod", []).append(i)
                continue
            censored[i] = True
            lod[i] = outcome.lod if m.group(1).upper() == "LOD" else float(m.group(1))
            continue
        try:
            value[i] = float(cell)
        except ValueError:
            bad.setdefault("not_numeric", []).append(i)
            continue
        if not np.isfinite(value[i]):
            bad.setdefault("not_numeric", []).append(i)
    return ParsedOutcome(value, censored, lod), bad


def _check_outcome(path: Path, table: pd.DataFrame, o: Outcome, problems: list[str]) -> None:
    parsed, bad = parse_outcome(table[o.column], o)
    col = f"column '{o.column}'"
    if "not_numeric" in bad:
        expect = "a number" + (" or a below-LOD marker such as '<0.05' or '<LOD'" if o.lod else "")
        problems.append(f"{path}: {col}, {rows_text(bad['not_numeric'])}: expected {expect} or an empty cell")
    if "marker_without_lod" in bad:
        problems.append(
            f"{path}: {col}, {rows_text(bad['marker_without_lod'])}: below-LOD marker found but the "
            f"codebook gives no 'lod' for outcome '{o.key}'"
        )
    v = parsed.value
    concentration = o.is_log or o.lod is not None
    if concentration:
        neg = np.flatnonzero(v < 0)
        if len(neg):
            problems.append(f"{path}: {col}, {rows_text(neg)}: expected a non-negative concentration")
        if o.is_log and o.lod is None:
            zero = np.flatnonzero(v == 0)
            if len(zero):
                problems.append(
                    f"{path}: {col}, {rows_text(zero)}: log transform needs positive values "
                    "(give an 'lod' so zeros count as below detection)"
                )
    if o.range is not None:
        lo, hi = o.range
        out = np.flatnonzero((v < lo) | (v > hi))
        if len(out):
            problems.append(f"{path}: {col}, {rows_text(out)}: expected a score within [{lo:g}, {hi:g}]")


def _check_covariate(path: Path, cells: pd.Series, column: str, problems: list[str]) -> None:
    """A column that is mostly numbers with a few words is a typo, not a categorical covariate."""
    present = cells.str.strip()
    present = present[~present.isin(MISSING)]
    numeric = pd.to_numeric(present, errors="coerce").notna()
    if len(present) and numeric.mean() >= 0.5 and not numeric.all():
        bad = present.index[~numeric.to_numpy()].to_numpy()
        problems.append(
            f"{path}: column '{column}', {rows_text(bad)}: expected a number like the other values of this "
            "covariate (or an empty cell)"
        )


def validate_table(cb: Codebook, table: pd.DataFrame, min_per_arm: int = 3) -> None:
    """Check a table against its codebook; raise one ValidationError listing every problem."""
    path = cb.table
    problems: list[str] = []
    needed = {
        cb.participant: "columns.participant",
        cb.arm: "columns.arm",
        cb.visit: "columns.visit",
        **{c: "covariates" for c in cb.covariates},
        **{o.column: f"outcomes.{o.key}" for o in cb.outcomes},
    }
    absent = [f"'{c}' (from codebook key {k})" for c, k in needed.items() if c not in table.columns]
    if absent:
        problems.append(f"{path}: missing column{'s' if len(absent) > 1 else ''} {', '.join(absent)}")
        raise ValidationError(problems)
    if len(table) == 0:
        raise ValidationError([f"{path}: the table has no data rows"])

    pid, arm, visit = (table[c].str.strip() for c in (cb.participant, cb.arm, cb.visit))
    for name, col in ((cb.participant, pid), (cb.arm, arm), (cb.visit, visit)):
        empty = np.flatnonzero(col.isin(MISSING).to_numpy())
        if len(empty):
            problems.append(f"{path}: column '{name}', {rows_text(empty)}: expected a value, found an empty cell")
    arms = [cb.intervention, cb.control] + ([cb.healthy] if cb.healthy else [])
    unknown = np.flatnonzero(~arm.isin(arms + list(MISSING)).to_numpy())
    if len(unknown):
        found = sorted(set(arm.iloc[unknown]))
        problems.append(f"{path}: column '{cb.arm}', {rows_text(unknown)}: expected one of {arms}, found {found}")
    unknown = np.flatnonzero(~visit.isin(list(cb.visits) + list(MISSING)).to_numpy())
    if len(unknown):
        found = sorted(set(visit.iloc[unknown]))
        problems.append(
            f"{path}: column '{cb.visit}', {rows_text(unknown)}: expected one of {list(cb.visits)}, found {found}"
        )
    dup = np.flatnonzero(pd.DataFrame({"p": pid, "v": visit}).duplicated(keep=False).to_numpy())
    if len(dup):
        problems.append(
            f"{path}: columns '{cb.participant}' x '{cb.visit}', {rows_text(dup)}: "
            "expected one row per participant and visit, found duplicates"
        )
    n_arms = arm.groupby(pid).transform("nunique").to_numpy()
    mixed = np.flatnonzero(n_arms > 1)
    if len(mixed):
        problems.append(
            f"{path}: column '{cb.arm}', {rows_text(mixed)}: expected the same arm at every visit of a "
            "participant, found participants whose arm changes"
        )
    trial = arm.isin([cb.intervention, cb.control]).to_numpy()
    has_base = (visit == cb.baseline).groupby(pid).transform("any").to_numpy()
    no_base = np.flatnonzero(trial & ~has_base)
    if len(no_base):
        problems.append(
            f"{path}: column '{cb.visit}', {rows_text(no_base)}: trial participants without a "
            f"baseline ('{cb.baseline}') row"
        )
    for c in cb.covariates:
        _check_covariate(path, table[c], c, problems)
    for o in cb.outcomes:
        _check_outcome(path, table, o, problems)
    for label in (cb.intervention, cb.control):
        n = pid[(arm == label) & (visit == cb.baseline)].nunique()
        if n < min_per_arm:
            problems.append(
                f"{path}: column '{cb.arm}': arm '{label}' has {n} participant(s) with a baseline row; "
                f"expected at least {min_per_arm} (config validation.min_per_arm)"
            )
    if problems:
        raise ValidationError(problems)
