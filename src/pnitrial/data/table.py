"""Reading a table as the file holds it: text cells, file line numbers, and messages about them.

Every cell is read as text (the csv module, so nothing is guessed); problems name the file, the
column and the rows (1-based data rows and file lines), and show an offending cell only when it
cannot be a participant identifier (see `Echo`).
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

from pnitrial.errors import ValidationError

MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "."})
# A number as a CSV cell may hold it: ASCII digits, optional sign, point and exponent. Python's float()
# also takes '1_000', 'infinity', Arabic-Indic or full-width digits; a measurement written so is a typo.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_ROWS_SHOWN = 10
MAX_VALUES_SHOWN = 5  # more distinct offending values than this are counted, not shown
VALUE_CHARS = 20  # an offending value is shortened to this many characters
_INFO = "pnitrial.read_table"  # DataFrame.attrs key of a TableInfo
_GROUPED = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def rows_text(index: np.ndarray | Sequence[int], lines: Sequence[int] | None = None) -> str:
    """Name data rows for a message: ``'rows 3, 7 (file lines 4, 8)'``.

    At most MAX_ROWS_SHOWN rows are listed; the rest are counted.

    Parameters
    ----------
    index : array_like of int
        0-based data-row indices (any order).
    lines : sequence of int, optional
        The file line of every data row (see `file_lines`); default one header line and no blank
        lines, so data row i is on file line i + 2.

    Returns
    -------
    str
        The 1-based rows and their file lines.

    Examples
    --------
    >>> rows_text([6, 2])
    'rows 3, 7 (file lines 4, 8)'
    >>> rows_text([1], lines=[2, 9])
    'row 2 (file line 9)'
    >>> rows_text(range(12))
    'rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more (file lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)'
    """
    idx = sorted(int(i) for i in index)
    shown = idx[:MAX_ROWS_SHOWN]
    more = f" and {len(idx) - len(shown)} more" if len(idx) > len(shown) else ""
    word = "row" if len(idx) == 1 else "rows"
    rows = ", ".join(str(i + 1) for i in shown)
    line = ", ".join(str(int(lines[i]) if lines is not None else i + 2) for i in shown)
    return f"{word} {rows}{more} (file line{'s' if len(idx) > 1 else ''} {line})"


@dataclass(frozen=True, eq=False)
class TableInfo:
    """What read_table knows beyond the cells: the file line of every data row, the header as written.

    Kept in the frame's ``attrs`` and shared, not copied, by the frames pandas derives from it.

    Parameters
    ----------
    lines : ndarray of int
        File line (1-based) of every data row.
    header : tuple of str
        The header cells as written, repeated names kept.

    Examples
    --------
    >>> info = TableInfo(np.array([2, 4]), ("id", "crp", "crp"))
    >>> info.lines.tolist(), info.header
    ([2, 4], ('id', 'crp', 'crp'))
    """

    lines: np.ndarray
    header: tuple[str, ...]

    def __deepcopy__(self, memo) -> TableInfo:  # pandas deep-copies attrs on every operation: share it
        return self


def table_info(table: pd.DataFrame) -> TableInfo | None:
    """The TableInfo that read_table attached to a table, or None for other frames.

    Parameters
    ----------
    table : DataFrame
        Any frame.

    Returns
    -------
    TableInfo or None

    Examples
    --------
    >>> table_info(pd.DataFrame({"id": ["p1"]})) is None
    True
    """
    return table.attrs.get(_INFO)


def file_lines(table: pd.DataFrame) -> np.ndarray | None:
    r"""File line of every data row of a table from read_table (None for other frames).

    Parameters
    ----------
    table : DataFrame
        A table; only one from `read_table` knows its file lines.

    Returns
    -------
    ndarray of int or None

    Examples
    --------
    >>> import contextlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("trial.csv").write_text("id,crp\np1,1.5\n\np2,2.0\n")  # a blank line 3
    ...     table = read_table(Path("trial.csv"))
    >>> file_lines(table).tolist(), file_lines(pd.DataFrame()) is None
    ([2, 4], True)
    """
    info = table_info(table)
    return None if info is None else info.lines


def header_of(table: pd.DataFrame) -> list[str]:
    r"""The header as written (repeated names kept), else the frame's columns.

    Parameters
    ----------
    table : DataFrame
        A table from `read_table`, or any frame.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import contextlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("trial.csv").write_text("id,crp,crp\np1,1.5,2.0\n")
    ...     table = read_table(Path("trial.csv"))
    >>> header_of(table), list(table.columns)
    (['id', 'crp', 'crp'], ['id', 'crp', 'crp.1'])
    """
    info = table_info(table)
    return list(table.columns) if info is None else list(info.header)


def short(value: str) -> str:
    """A cell for a message: quoted, control characters escaped, at most VALUE_CHARS characters.

    Parameters
    ----------
    value : str
        The cell.

    Returns
    -------
    str
        Its repr, shortened with ``...`` when longer than VALUE_CHARS.

    Examples
    --------
    >>> short("high")
    "'high'"
    >>> short("a very long free-text comment")
    "'a very long free-...'"
    """
    text = value if len(value) <= VALUE_CHARS else value[: VALUE_CHARS - 3] + "..."
    return repr(text)


def is_number(cells: pd.Series) -> np.ndarray:
    """Which (stripped) cells are plain decimal or scientific numbers.

    Only ASCII digits with an optional sign, point and exponent count (see ``NUMBER``): not
    ``inf``, ``1_000``, decimal commas or other scripts' digits, which Python's float() accepts.

    Parameters
    ----------
    cells : Series of str
        Text cells, already stripped.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> is_number(pd.Series(["1.5", "-2e3", ".5", "1,5", "inf", ""])).tolist()
    [True, True, True, False, False, False]
    """
    return cells.str.fullmatch(NUMBER.pattern).to_numpy(dtype=bool)


def number_hint(values: Iterable[str]) -> str:
    """Why cells that look like numbers are not, in words (never the cells themselves).

    Parameters
    ----------
    values : iterable of str
        The offending cells.

    Returns
    -------
    str
        ``' (hint; hint)'`` for decimal commas, digit grouping, non-ASCII digits, infinity and
        spelled-out missing values; empty when no hint applies.

    Examples
    --------
    >>> number_hint(["12,5"])
    ' (decimal commas: write 12.5, not 12,5)'
    >>> number_hint(["high"])
    ''
    """
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

    Parameters
    ----------
    private : frozenset of str
        Every cell of the participant column (stripped and as written).
    participants : int
        The number of distinct participants.

    Examples
    --------
    >>> table = pd.DataFrame({"id": ["p1", "p2", "p3"], "arm": ["A", "B", "high"]})
    >>> echo = Echo.of(table, "id")
    >>> echo.participants
    3
    >>> echo.found(["high"])
    "found 1 distinct unexpected value: 'high'"
    >>> "not shown: they include participant identifiers" in echo.found(["p2"])
    True
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
    r"""Read every cell as text so validation sees exactly what the file holds.

    Checks what a reader can: the file exists, is UTF-8 text, has a header line and every line as
    many fields as the header. Blank lines are skipped; the file line of every data row is kept
    (file_lines) so messages can name it.

    Parameters
    ----------
    path : Path
        The CSV file (comma-separated, UTF-8 with or without a byte-order mark).
    key : str, optional
        The codebook key that names the file, for messages (default ``'table'``).

    Returns
    -------
    DataFrame
        One string column per header cell (a repeated name gets a ``.1`` suffix, as pandas does),
        with a `TableInfo` in its ``attrs``.

    Raises
    ------
    ValidationError
        When the file cannot be read as such a table; the message names the file line.

    Examples
    --------
    >>> import contextlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("trial.csv").write_text("id,arm,visit,crp\np1,A,pre,1.5\np1,A,post,<0.1\n")
    ...     table = read_table(Path("trial.csv"))
    >>> table["crp"].tolist()
    ['1.5', '<0.1']
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("trial.csv").write_text("id,arm,visit\np1,A,pre,1,5\n")
    ...     try:
    ...         read_table(Path("trial.csv"))
    ...     except ValidationError as exc:
    ...         print(exc.problems[0].split(" (a comma")[0])
    trial.csv: row 1 (file line 2): expected 3 comma-separated fields like the header line, found 5
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

    Parameters
    ----------
    table : DataFrame
        The table, as `read_table` returned it.
    absent : sequence of str
        The expected columns it lacks.
    known : iterable of str, optional
        Every column name the codebook gives; when all are absent, a header line that holds numbers
        or `labels` is taken for data.
    labels : iterable of str, optional
        Arm and visit labels, which a data line would hold.

    Returns
    -------
    str
        ``'; <reason>'`` to append to the message, or ``''`` when no reason is evident.

    Examples
    --------
    >>> columns_hint(pd.DataFrame(columns=["ID", "arm", "visit"]), ["id"])
    "; the header has 'ID' for 'id': names must match exactly, including case and spaces"
    >>> "the file looks semicolon-separated" in columns_hint(pd.DataFrame(columns=["id;arm;visit"]), ["id"])
    True
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
    r"""Report each used column whose name the header repeats: which one is meant is ambiguous.

    Parameters
    ----------
    table : DataFrame
        The table, as `read_table` returned it.
    path : Path
        The file, for the message.
    used : iterable of str
        The columns the codebook uses.
    problems : list of str
        Appended to, one message per repeated column.

    Examples
    --------
    >>> import contextlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("trial.csv").write_text("id,crp,crp\np1,1.5,2.0\n")
    ...     table = read_table(Path("trial.csv"))
    >>> problems = []
    >>> duplicate_columns(table, Path("trial.csv"), ["id", "crp"], problems)
    >>> problems
    ["trial.csv: column 'crp' appears 2 times in the header (columns 2, 3); expected each column once"]
    """
    header = header_of(table)
    for name in dict.fromkeys(used):
        where = [i + 1 for i, h in enumerate(header) if h == name]
        if len(where) > 1:
            problems.append(
                f"{path}: column '{name}' appears {len(where)} times in the header (columns "
                f"{', '.join(map(str, where))}); expected each column once"
            )
