"""Validation of a trial table against its codebook.

Every check collects its failures; one ValidationError lists them all, each naming
the file, the column, the rows (1-based data rows and file lines) and what was
expected. Participant identifiers are never echoed: rows are named by number, and an
offending cell is shown only when it cannot be an identifier (see `Echo`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Codebook, Outcome
from pnitrial.data.table import (
    MISSING,
    NUMBER,
    Echo,
    columns_hint,
    duplicate_columns,
    file_lines,
    is_number,
    number_hint,
    rows_text,
)
from pnitrial.errors import ValidationError

_BELOW = re.compile(r"<\s*(LOD|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)", re.IGNORECASE)
MAX_LABEL_CHARS = 100  # longest categorical covariate cell
MAX_LEVELS = 50  # most levels of a categorical covariate
EXTREME = 1e6  # |value| above this times the median |value| of an outcome without `range` is refused


@dataclass
class ParsedOutcome:
    """One outcome column parsed: raw-scale numbers, which cells are below the LOD, and their limits.

    Parameters
    ----------
    value : ndarray of float
        Raw-scale numbers; NaN where missing or censored.
    censored : ndarray of bool
        Below the limit of detection.
    lod : ndarray of float
        The limit that applies to a censored cell (NaN elsewhere).

    Examples
    --------
    >>> parsed = ParsedOutcome(np.array([1.2, np.nan]), np.array([False, True]), np.array([np.nan, 0.1]))
    >>> int(parsed.censored.sum())
    1
    """

    value: np.ndarray  # raw-scale numbers; NaN where missing or censored
    censored: np.ndarray  # below LOD
    lod: np.ndarray  # the LOD that applies to a censored cell (NaN elsewhere)


def parse_outcome(cells: pd.Series, outcome: Outcome) -> tuple[ParsedOutcome, dict[str, list[int]]]:
    """Parse an outcome column into numbers, below-LOD markers and missing cells; returns problems by kind.

    A marker is ``<`` followed by a number (its own limit) or ``LOD`` (the codebook's limit); the
    values in ``MISSING`` are missing.

    Parameters
    ----------
    cells : Series of str
        The column as read by `read_table`.
    outcome : Outcome
        Its codebook entry (for the limit of detection).

    Returns
    -------
    parsed : ParsedOutcome
        Values, censoring and limits of every cell.
    bad : dict of str to list of int
        0-based rows of each kind of problem: ``'not_numeric'``, ``'not_finite'``,
        ``'marker_without_lod'`` and ``'bad_marker'``; empty when every cell parses.

    Examples
    --------
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1)
    >>> parsed, bad = parse_outcome(pd.Series(["1.2", "<0.05", "<LOD", "", "high"]), crp)
    >>> parsed.value.tolist(), parsed.censored.tolist()
    ([1.2, nan, nan, nan, nan], [False, True, True, False, False])
    >>> parsed.lod.tolist(), bad
    ([nan, 0.05, 0.1, nan, nan], {'not_numeric': [4]})
    """
    n = len(cells)
    value = np.full(n, np.nan)
    censored = np.zeros(n, dtype=bool)
    lod = np.full(n, np.nan)
    bad: dict[str, list[int]] = {}
    for i, raw in enumerate(cells.tolist()):
        cell = raw.strip()
        if cell in MISSING:
            continue
        m = _BELOW.fullmatch(cell)
        if m:
            if outcome.lod is None:
                bad.setdefault("marker_without_lod", []).append(i)
                continue
            limit = outcome.lod if m.group(1).upper() == "LOD" else float(m.group(1))
            if not (np.isfinite(limit) and limit > 0):
                bad.setdefault("bad_marker", []).append(i)
                continue
            censored[i] = True
            lod[i] = limit
            continue
        if not NUMBER.fullmatch(cell):
            bad.setdefault("not_numeric", []).append(i)
            continue
        number = float(cell)
        if not np.isfinite(number):
            bad.setdefault("not_finite", []).append(i)
            continue
        value[i] = number
    return ParsedOutcome(value, censored, lod), bad


class _Check:
    """What every check of one table needs: the file, its line numbers and what may be echoed."""

    def __init__(self, path: Path, table: pd.DataFrame, echo: Echo):
        self.path, self.table, self.echo = path, table, echo
        self.lines = file_lines(table)
        self.problems: list[str] = []

    def rows(self, index) -> str:
        return rows_text(index, self.lines)

    def add(self, column: str, index, expected: str) -> None:
        self.problems.append(f"{self.path}: column '{column}', {self.rows(index)}: {expected}")

    def bad_cells(self, column: str, index, expected: str) -> None:
        """Cells that are not what was expected, shown when that is safe."""
        cells = self.table[column].iloc[np.asarray(index, dtype=int)].str.strip().tolist()
        self.add(column, index, f"expected {expected}; {self.echo.found(cells)}{number_hint(cells)}")


def _check_outcome(ck: _Check, o: Outcome) -> None:
    parsed, bad = parse_outcome(ck.table[o.column], o)
    col = o.column
    if "not_numeric" in bad:
        expect = "a number" + (" or a below-LOD marker such as '<0.05' or '<LOD'" if o.lod else "")
        ck.bad_cells(col, bad["not_numeric"], f"{expect} or an empty cell")
    if "not_finite" in bad:
        ck.add(
            col,
            bad["not_finite"],
            "expected a finite number, found a number too large for a double (check the units or a missing "
            f"decimal point, or declare the outcome's `range` in the codebook key 'outcomes/{o.key}')",
        )
    if "marker_without_lod" in bad:
        ck.add(
            col,
            bad["marker_without_lod"],
            f"below-LOD marker found but the codebook gives no 'lod' for outcome '{o.key}'",
        )
    if "bad_marker" in bad:
        ck.add(col, bad["bad_marker"], "expected a below-LOD marker with a positive limit, such as '<0.05'")
    v = parsed.value
    concentration = o.is_log or o.lod is not None
    if concentration:
        neg = np.flatnonzero(v < 0)
        if len(neg):
            ck.add(col, neg, "expected a non-negative concentration")
        if o.is_log and o.lod is None:
            zero = np.flatnonzero(v == 0)
            if len(zero):
                ck.add(
                    col,
                    zero,
                    "log transform needs positive values (give an 'lod' so zeros count as below detection)",
                )
    if o.range is not None:
        lo, hi = o.range
        out = np.flatnonzero((v < lo) | (v > hi))
        if len(out):
            ck.add(col, out, f"expected a score within [{lo:g}, {hi:g}]")
    else:
        size = np.abs(v[np.isfinite(v) & (v != 0)])
        if len(size):
            typical = float(np.median(size))
            far = np.flatnonzero(np.abs(v) > EXTREME * typical)
            if len(far):
                ck.add(
                    col,
                    far,
                    f"expected a plausible value: more than {EXTREME:,.0f} times the median size of this outcome "
                    f"({typical:.3g}); check the units (a missing decimal point, pg vs ng) or declare the "
                    f"outcome's `range` in the codebook key 'outcomes/{o.key}'",
                )


def _covariate_designs(ck: _Check, cb: Codebook, pid: pd.Series, trial: np.ndarray) -> dict[str, pd.Series]:
    """Check every covariate; return the usable ones (numbers, or labels) on their present cells."""
    usable: dict[str, pd.Series] = {}
    arms = f"('{cb.intervention}', '{cb.control}')"
    for c in cb.covariates:
        cells = ck.table[c].str.strip()
        present = cells[~cells.isin(MISSING).to_numpy()]
        numeric = is_number(present)
        if len(present) and numeric.mean() >= 0.5 and not numeric.all():
            # a column that is mostly numbers with a few words is a typo, not a categorical covariate
            bad = present.index[~numeric].to_numpy()
            ck.bad_cells(c, bad, "a number like the other values of this covariate (or an empty cell)")
            continue
        if len(present) and numeric.all():
            values = pd.to_numeric(present).astype(float)
            inf = present.index[~np.isfinite(values.to_numpy())].to_numpy()
            if len(inf):
                ck.add(c, inf, "expected a finite number, found a number too large for a double")
                continue
        else:
            long = present.index[(present.str.len() > MAX_LABEL_CHARS).to_numpy()].to_numpy()
            if len(long):
                longest = int(present.str.len().max())
                ck.add(
                    c,
                    long,
                    f"expected a category label of at most {MAX_LABEL_CHARS} characters, found cells of up to "
                    f"{longest:,} characters (free text does not belong in a covariate)",
                )
                continue
            n_levels = present.nunique()
            if n_levels > MAX_LEVELS:
                ck.problems.append(
                    f"{ck.path}: column '{c}': expected a categorical covariate with at most {MAX_LEVELS} levels, "
                    f"found {n_levels} (free text, dates or identifiers are not covariates)"
                )
                continue
            owners = pd.DataFrame({"p": pid[present.index], "v": present}).groupby("v")["p"].nunique()
            n_people = pid[present.index].nunique()
            if n_people >= 5 and (owners == 1).all():
                ck.problems.append(
                    f"{ck.path}: column '{c}': expected a categorical covariate whose levels participants share, "
                    f"found {n_levels} levels each held by a single participant (an identifier or free text?)"
                )
                continue
            values = present
        in_trial = values[trial[values.index]]
        if not trial.any():
            continue  # no trial rows at all: the arm column is reported
        if len(in_trial) == 0:
            ck.problems.append(
                f"{ck.path}: column '{c}': covariate '{c}' has no value in the trial arms {arms}; "
                "expected a value for the trial participants"
            )
        elif in_trial.nunique() == 1:
            what = "one value" if numeric.all() else "one level"
            ck.problems.append(
                f"{ck.path}: column '{c}': covariate '{c}' has {what} in all rows of the trial arms {arms}; "
                "expected at least two different values (a constant covariate cannot be estimated: "
                "remove it from the codebook key 'covariates')"
            )
        else:
            usable[c] = in_trial
    return usable


def _columns(values: pd.Series) -> np.ndarray:
    """Centred, unit-length design columns of a covariate (numbers, or indicators of all but one level)."""
    if values.dtype.kind == "f":
        x = values.to_numpy(dtype=float)[:, None]
    else:
        levels = sorted(set(values.tolist()))
        x = np.column_stack([(values == lev).to_numpy(dtype=float) for lev in levels[1:]])
    x = x - x.mean(axis=0)
    norm = np.linalg.norm(x, axis=0)
    return x[:, norm > 0] / norm[norm > 0]


def _aliased(a: pd.Series, b: pd.Series) -> bool:
    """Whether two variables are collinear (with the intercept) on the rows where both are present."""
    rows = a.index.intersection(b.index)
    if len(rows) < 3:
        return False
    xa, xb = _columns(a.loc[rows]), _columns(b.loc[rows])
    if xa.shape[1] == 0 or xb.shape[1] == 0:
        return False
    m = np.column_stack([xa, xb])
    if m.shape[1] >= len(rows):
        return True
    s = np.linalg.svd(m, compute_uv=False)
    return bool(s[-1] < 1e-8 * s[0])


def _check_collinear(ck: _Check, cb: Codebook, usable: dict[str, pd.Series], arm: pd.Series, visit: pd.Series):
    """Covariates that are exact linear functions of one another, or of the arm or the visit."""
    names = list(usable)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if _aliased(usable[a], usable[b]):
                ck.problems.append(
                    f"{ck.path}: columns '{a}' and '{b}': covariates '{a}' and '{b}' are collinear in the trial "
                    "arms (one is an exact linear function of the other, like age in years and in months); "
                    "expected covariates that differ: keep one of them in the codebook key 'covariates'"
                )
        for column, role in ((cb.arm, "arm"), (cb.visit, "visit")):
            other = (arm if role == "arm" else visit).loc[usable[a].index]
            if other.nunique() > 1 and _aliased(usable[a], other):
                ck.problems.append(
                    f"{ck.path}: columns '{a}' and '{column}': covariate '{a}' is collinear with the {role} in the "
                    f"trial arms (an exact function of it); expected a baseline covariate independent of the {role}"
                )


def validate_table(cb: Codebook, table: pd.DataFrame, min_per_arm: int = 3) -> None:
    """Check a table against its codebook; raise one ValidationError listing every problem.

    Checks the columns the codebook names, the identifying cells (no empty cells, known arms and
    visits, one row per participant and visit, one arm per participant, a baseline row and
    follow-up in both trial arms), the covariates (numbers or shared labels, not constant, not
    collinear with each other, the arm or the visit), every outcome cell (numbers, below-LOD
    markers, ranges, plausible magnitudes), at least `min_per_arm` participants per trial arm and,
    when the codebook gives ``enrolled``, no more participants randomised than enrolled.

    Parameters
    ----------
    cb : Codebook
        The codebook.
    table : DataFrame
        The trial table as `read_table` returned it (text cells).
    min_per_arm : int, optional
        Fewest participants with a baseline row in each trial arm (config validation.min_per_arm).

    Raises
    ------
    ValidationError
        Listing every problem, each naming the file, the column and the rows.

    Examples
    --------
    >>> from pnitrial.data.codebook import Codebook
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1)
    >>> cb = Codebook(Path("dataset.yaml"), Path("trial.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...               ("pre", "post"), (), (crp,))
    >>> table = pd.DataFrame({"id": ["p1", "p1", "p2", "p2"], "arm": ["A", "A", "B", "B"],
    ...                       "visit": ["pre", "post", "pre", "post"], "crp": ["1.2", "<0.1", "2.5", "3.1"]})
    >>> validate_table(cb, table, min_per_arm=1)  # valid: nothing is raised
    >>> table.loc[3, "crp"] = "-3.1"
    >>> try:
    ...     validate_table(cb, table, min_per_arm=1)
    ... except ValidationError as exc:
    ...     print(exc.problems)
    ["trial.csv: column 'crp', row 4 (file line 5): expected a non-negative concentration"]
    """
    path = cb.table
    needed = {
        cb.participant: "columns.participant",
        cb.arm: "columns.arm",
        cb.visit: "columns.visit",
        **{c: "covariates" for c in cb.covariates},
        **{o.column: f"outcomes.{o.key}" for o in cb.outcomes},
    }
    absent = [c for c in needed if c not in table.columns]
    if absent:
        names = ", ".join(f"'{c}' (from codebook key {needed[c]})" for c in absent)
        hint = columns_hint(table, absent, known=needed, labels=[cb.intervention, cb.control, *cb.visits])
        raise ValidationError([f"{path}: missing column{'s' if len(absent) > 1 else ''} {names}{hint}"])
    ck = _Check(path, table, Echo.of(table, cb.participant))
    duplicate_columns(table, path, needed, ck.problems)
    if ck.problems:
        raise ValidationError(ck.problems)
    if len(table) == 0:
        raise ValidationError(
            [f"{path}: the table has a header line but no data rows; expected one row per participant and visit"]
        )

    pid, arm, visit = (table[c].str.strip() for c in (cb.participant, cb.arm, cb.visit))
    for name, col in ((cb.participant, pid), (cb.arm, arm), (cb.visit, visit)):
        empty = np.flatnonzero(col.isin(MISSING).to_numpy())
        if len(empty):
            ck.add(name, empty, "expected a value, found an empty cell")
    arms = [cb.intervention, cb.control] + ([cb.healthy] if cb.healthy else [])
    for name, col, allowed in ((cb.arm, arm, arms), (cb.visit, visit, list(cb.visits))):
        unknown = np.flatnonzero(~col.isin(allowed + list(MISSING)).to_numpy())
        if len(unknown):
            found = ck.echo.found(col.iloc[unknown], id_like=col.nunique() >= max(ck.echo.participants, 2))
            ck.add(name, unknown, f"expected one of {allowed}, {found}")
    dup = np.flatnonzero(pd.DataFrame({"p": pid, "v": visit}).duplicated(keep=False).to_numpy())
    if len(dup):
        ck.problems.append(
            f"{path}: columns '{cb.participant}' x '{cb.visit}', {ck.rows(dup)}: "
            "expected one row per participant and visit, found duplicates"
        )
    n_arms = arm.groupby(pid).transform("nunique").to_numpy()
    mixed = np.flatnonzero(n_arms > 1)
    if len(mixed):
        ck.add(
            cb.arm,
            mixed,
            "expected the same arm at every visit of a participant, found participants whose arm changes",
        )
    trial = arm.isin([cb.intervention, cb.control]).to_numpy()
    baseline = (visit == cb.baseline).to_numpy()
    has_base = pd.Series(baseline, index=table.index).groupby(pid).transform("any").to_numpy()
    no_base = np.flatnonzero(trial & ~has_base & ~pid.isin(MISSING).to_numpy())
    if len(no_base):
        ck.add(cb.visit, no_base, f"trial participants without a baseline ('{cb.baseline}') row")
    later = list(cb.visits[1:])
    follow_up = visit.isin(later).to_numpy()
    if trial.any() and not (trial & follow_up).any():
        ck.problems.append(
            f"{path}: column '{cb.visit}': every row of the trial arms is at the baseline visit '{cb.baseline}'; "
            f"expected rows at a later visit ({later}) too: the intervention effect is a change from baseline"
        )
    elif trial.any():
        for label in (cb.intervention, cb.control):
            in_arm = (arm == label).to_numpy()
            if in_arm.any() and not (in_arm & follow_up).any():
                ck.problems.append(
                    f"{path}: column '{cb.visit}': arm '{label}' has no row at a later visit ({later}); "
                    "expected follow-up rows in both trial arms"
                )
    usable = _covariate_designs(ck, cb, pid, trial)
    if len(usable):
        _check_collinear(ck, cb, usable, arm, visit)
    for o in cb.outcomes:
        _check_outcome(ck, o)
    for label in (cb.intervention, cb.control):
        n = pid[(arm == label) & (visit == cb.baseline)].nunique()
        if n < min_per_arm:
            ck.problems.append(
                f"{path}: column '{cb.arm}': arm '{label}' has {n} participant(s) with a baseline row; "
                f"expected at least {min_per_arm} (config validation.min_per_arm)"
            )
    randomised = pid[trial & ~pid.isin(MISSING).to_numpy()].nunique()
    if cb.enrolled is not None and cb.enrolled < randomised:
        ck.problems.append(
            f"{cb.path}: key 'enrolled': expected at least the {randomised} participants randomised in {path.name} "
            f"(arms '{cb.intervention}' and '{cb.control}'), found {cb.enrolled}"
        )
    if ck.problems:
        raise ValidationError(ck.problems)
