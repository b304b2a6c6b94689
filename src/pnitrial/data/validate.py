"""Validation of a trial table against its codebook.

Every check collects its failures; one ValidationError lists them all, each naming
the file, the column, the rows (1-based data rows and file lines) and what was
expected. Participant identifiers are never echoed: rows are named by number, and an
offending cell is shown only when it cannot be an identifier (see `Echo`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Codebook, Outcome
from pnitrial.errors import ValidationError

MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "."})
# A number as a CSV cell may hold it: ASCII digits, optional sign, point and exponent. Python's float()
# also takes '1_000', 'infinity', Arabic-Indic or full-width digits; a measurement written so is a typo.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BELOW = re.compile(r"<\s*(LOD|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)", re.IGNORECASE)
MAX_ROWS_SHOWN = 10
MAX_VALUES_SHOWN = 5  # more distinct offending values than this are counted, not shown
VALUE_CHARS = 20  # an offending value is shortened to this many characters
MAX_LABEL_CHARS = 100  # longest categorical covariate cell
MAX_LEVELS = 50  # most levels of a categorical covariate
EXTREME = 1e6  # |value| above this times the median |value| of an outcome without `range` is refused
_INFO = "pnitrial.read_table"  # DataFrame.attrs key of a TableInfo
_GROUPED = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def rows_text(index: np.ndarray | Sequence[int], lines: Sequence[int] | None = None) -> str:
    """'rows 3, 7 (file lines 4, 8)' for 0-based data-row indices (lines: file line of every data row)."""
    idx = sorted(int(i) for i in index)
    shown = idx[:MAX_ROWS_SHOWN]
    more = f" and {len(idx) - len(shown)} more" if len(idx) > len(shown) else ""
    word = "row" if len(idx) == 1 else "rows"
    rows = ", ".join(str(i + 1) for i in shown)
    line = ", ".join(str(int(lines[i]) if lines is not None else i + 2) for i in shown)
    return f"{word} {rows}{more} (file line{'s' if len(idx) > 1 else ''} {line})"


@dataclass(frozen=True, eq=False)
class TableInfo:
    """What read_table knows beyond the cells: the file line of every data row, the header as written."""

    lines: np.ndarray
    header: tuple[str, ...]

    def __deepcopy__(self, memo) -> TableInfo:  # pandas deep-copies attrs on every operation: share it
        return self


def table_info(table: pd.DataFrame) -> TableInfo | None:
    return table.attrs.get(_INFO)


def file_lines(table: pd.DataFrame) -> np.ndarray | None:
    """File line of every data row of a table from read_table (None for other frames)."""
    info = table_info(table)
    return None if info is None else info.lines


def header_of(table: pd.DataFrame) -> list[str]:
    """The header as written (repeated names kept), else the frame's columns."""
    info = table_info(table)
    return list(table.columns) if info is None else list(info.header)


def short(value: str) -> str:
    """A cell for a message: quoted, control characters escaped, at most VALUE_CHARS characters."""
    text = value if len(value) <= VALUE_CHARS else value[: VALUE_CHARS - 3] + "..."
    return repr(text)


def is_number(cells: pd.Series) -> np.ndarray:
    """Which (stripped) cells are plain decimal or scientific numbers."""
    return cells.str.fullmatch(NUMBER.pattern).to_numpy(dtype=bool)


def number_hint(values: Iterable[str]) -> str:
    """Why cells that look like numbers are not, in words (never the cells themselves)."""
    hints = []
    values = list(values)
    grouped = [v for v in values if re.search(r"[0-9][_' ][0-9]", v) or re.fullmatch(_GROUPED, v)]
    if any(re.fullmatch(r"[+-]?[0-9]+,[0-9]+", v) and v not in grouped for v in values):
        hints.append("decimal commas: write 12.5, not 12,5")
    if grouped:
        hints.append("digit grouping: write 1000, not 1_000 or 1,000")
    if any(any(ch.isdigit() and ch not in "0123456789" for ch in v) for v in values):
        hints.append("only the ASCII digits 0-9 count as digits")
    if any(v.strip("+-").lower() in ("inf", "infinity") for v in values):
        hints.append("infinity is not a measurement")
    if any(v.lower() in ("nan", "na", "n/a", "null", "none", "missing") and v not in MISSING for v in values):
        hints.append(f"write a missing value as an empty cell or one of {sorted(MISSING - {''})}")
    return f" ({'; '.join(hints)})" if hints else ""


@dataclass(frozen=True)
class Echo:
    """Which offending cells a message may show.

    None if any of them is a cell of the participant column, none if there are more than
    MAX_VALUES_SHOWN distinct ones or at least as many as there are participants (a wrongly
    mapped identifier column looks like that), and each shortened to VALUE_CHARS characters.
    """

    private: frozenset[str]  # every cell of the participant column
    participants: int  # distinct participants

    @classmethod
    def of(cls, table: pd.DataFrame, participant: str) -> Echo:
        if participant not in table.columns:
            return cls(frozenset(), 0)
        cells = table[participant].str.strip()
        present = cells[~cells.isin(MISSING)]
        return cls(frozenset(present.tolist()) | frozenset(table[participant].tolist()), present.nunique())

    def found(self, values: Iterable[str], id_like: bool = False) -> str:
        distinct = sorted(set(values))
        k = len(distinct)
        head = f"found {k} distinct unexpected value{'s' if k != 1 else ''}"
        if any(v in self.private for v in distinct):
            return f"{head} (not shown: they include participant identifiers; check the codebook key 'columns')"
        if id_like or k > MAX_VALUES_SHOWN or k >= max(self.participants, 2):
            return (
                f"{head} (not shown: more than {MAX_VALUES_SHOWN}, or as many as there are participants; "
                "if the codebook key 'columns' maps the wrong column, they may be identifiers)"
            )
        return f"{head}: {', '.join(short(v) for v in distinct)}"


def read_table(path: Path, key: str = "table") -> pd.DataFrame:
    """Read every cell as text so validation sees exactly what the file holds.

    Checks what a reader can: the file exists, is UTF-8 text, has a header line and every line as
    many fields as the header. Blank lines are skipped; the file line of every data row is kept
    (file_lines) so messages can name it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValidationError([f"{path}: is a directory, expected a CSV table file (codebook key '{key}')"])
    if not path.exists():
        raise ValidationError([f"{path}: table file not found (named by the codebook key '{key}')"])
    data = path.read_bytes()
    if not data:
        raise ValidationError(
            [f"{path}: the file is empty (0 bytes); expected a CSV table: a header line, then one line per row"]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if data[:4] == b"PK\x03\x04":
            kind = " (it looks like an Excel workbook: export it as CSV)"
        elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            kind = " (it is UTF-16)"
        else:
            kind = ""
        raise ValidationError(
            [f"{path}: file line {line}: not UTF-8 text{kind}; expected a CSV file saved as UTF-8"]
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ValidationError([f"{path}: file line {line}: holds a NUL character; expected a CSV text file"])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # a huge cell is read, then refused by the checks
    try:
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):
                rows.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        hint = " (a quote that is never closed?)" if "end of data" in str(exc) else ""
        raise ValidationError([f"{path}: file line {start}: cannot be read as CSV ({exc}){hint}"]) from None
    finally:
        csv.field_size_limit(limit)
    if not rows:
        raise ValidationError([f"{path}: the file holds only blank lines; expected a CSV table with a header line"])
    header, body, body_lines = rows[0], rows[1:], np.array(lines[1:], dtype=int)
    if len(header) > 1 or not _foreign_delimiter(header):
        wrong = [i for i, r in enumerate(body) if len(r) != len(header)]
        if wrong:
            counts = sorted({len(body[i]) for i in wrong})
            extra = any(len(body[i]) > len(header) for i in wrong)
            hint = " (a comma inside a cell? quote the cell or write decimals with a point)" if extra else ""
            raise ValidationError(
                [
                    f"{path}: {rows_text(wrong, body_lines)}: expected {len(header)} comma-separated fields "
                    f"like the header line, found {', '.join(map(str, counts))}{hint}"
                ]
            )
    else:
        body = [r[:1] + [""] * (len(header) - 1) for r in body]
    seen: set[str] = set(header)
    names: list[str] = []
    taken: set[str] = set()
    for name in header:
        if name in taken:  # renamed like pandas does, so the frame has unique columns; validate checks used names
            k = 1
            while f"{name}.{k}" in seen:
                k += 1
            name = f"{name}.{k}"
            seen.add(name)
        names.append(name)
        taken.add(name)
    table = pd.DataFrame(body, columns=names, dtype=str) if body else pd.DataFrame(columns=names, dtype=str)
    table.attrs[_INFO] = TableInfo(body_lines, tuple(header))
    return table


def _foreign_delimiter(header: list[str]) -> str | None:
    """The delimiter of a header read as one field that holds semicolons, tabs or pipes."""
    if len(header) != 1:
        return None
    counts = {d: header[0].count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def columns_hint(
    table: pd.DataFrame, absent: Sequence[str], known: Iterable[str] = (), labels: Iterable[str] = ()
) -> str:
    """Why expected columns may be missing: another delimiter, case or spaces, or no header line.

    Header cells are shown only when they equal a name the codebook gives up to case and spaces
    (a table without a header line has data, perhaps identifiers, in its first line).
    """
    header = header_of(table)
    delimiter = _foreign_delimiter(header)
    if delimiter:
        return (
            f"; the header line is a single field holding {_DELIMITERS[delimiter]}s: the file looks "
            f"{_DELIMITERS[delimiter]}-separated, expected comma-separated values (save it as CSV with commas)"
        )
    near = []
    for name in absent:
        for h in header:
            if h != name and h.strip().casefold() == name.strip().casefold():
                near.append(f"{short(h)} for '{name}'")
    if near:
        return f"; the header has {', '.join(near)}: names must match exactly, including case and spaces"
    known, labels = set(known), set(labels)
    if known and set(absent) >= known:
        cells = [h.strip() for h in header]
        if any(NUMBER.fullmatch(h) or h in labels for h in cells):
            return (
                "; the first line looks like data (numbers, arm or visit labels): "
                "expected a header line naming the columns"
            )
    return ""


def duplicate_columns(table: pd.DataFrame, path: Path, used: Iterable[str], problems: list[str]) -> None:
    """A used column whose name the header repeats: which one is meant is ambiguous."""
    header = header_of(table)
    for name in dict.fromkeys(used):
        where = [i + 1 for i, h in enumerate(header) if h == name]
        if len(where) > 1:
            problems.append(
                f"{path}: column '{name}' appears {len(where)} times in the header (columns "
                f"{', '.join(map(str, where))}); expected each column once"
            )


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
    """Check a table against its codebook; raise one ValidationError listing every problem."""
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
    if ck.problems:
        raise ValidationError(ck.problems)
