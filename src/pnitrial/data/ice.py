"""The intercurrent-event table a codebook may name: who has an event, from which visit, which strategy."""

from __future__ import annotations

import pandas as pd

from pnitrial.data.codebook import Codebook
from pnitrial.data.longframe import pseudonyms
from pnitrial.data.table import file_lines, read_table, rows_text
from pnitrial.errors import ValidationError

ICE_STRATEGIES = ("MAR", "JR", "CR", "CIR")
ICE_COLUMNS = ["pid", "visit", "strategy"]


def read_ice(cb: Codebook, table: pd.DataFrame) -> pd.DataFrame:
    """The codebook's intercurrent-event table, validated and pseudonymised.

    Every row must name a randomised participant of the trial table (once), a post-baseline visit of
    the codebook and a strategy (MAR, JR, CR or CIR); every problem is reported at once, naming the
    file, column and rows.

    Parameters
    ----------
    cb : Codebook
        The codebook; its ``ice`` says where the table is.
    table : DataFrame
        The trial table as `read_table` gives it (validated).

    Returns
    -------
    DataFrame
        ``pid`` (the participant's code in the long frame), ``visit`` and ``strategy``; empty
        without an ICE table.

    Examples
    --------
    >>> import contextlib, tempfile
    >>> from pathlib import Path
    >>> from pnitrial.data.codebook import IceSpec
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("ice.csv").write_text("id,from,strategy\\np2,post,JR\\n")
    ...     cb = Codebook(Path("d.yaml"), Path("t.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...                   ("pre", "post"), (), (), ice=IceSpec(Path("ice.csv"), "id", "from", "strategy"))
    ...     trial = pd.DataFrame({"id": ["p1", "p1", "p2"], "arm": ["A", "A", "B"], "visit": ["pre", "post", "pre"]})
    ...     read_ice(cb, trial).to_dict("records")
    [{'pid': 2, 'visit': 'post', 'strategy': 'JR'}]
    """
    if cb.ice is None:
        return pd.DataFrame(columns=ICE_COLUMNS)
    spec = cb.ice
    ice = read_table(spec.table, key="ice/table")
    path, lines = spec.table, file_lines(ice)
    absent = [c for c in (spec.participant, spec.visit, spec.strategy) if c not in ice.columns]
    if absent:
        raise ValidationError(
            [f"{path}: missing column{'s' if len(absent) > 1 else ''} {absent} (codebook key ice/columns)"]
        )
    codes = pseudonyms(cb, table)
    arm = table.assign(_p=table[cb.participant].str.strip()).drop_duplicates("_p").set_index("_p")[cb.arm].str.strip()
    randomised = {cb.intervention, cb.control}
    who = ice[spec.participant].str.strip()
    visit = ice[spec.visit].str.strip()
    strategy = ice[spec.strategy].str.strip()
    problems = []

    def bad(mask, column: str, expected: str) -> None:
        if mask.any():
            problems.append(f"{path}: column '{column}', {rows_text(mask.to_numpy().nonzero()[0], lines)}: {expected}")

    bad(~who.isin(list(codes)), spec.participant, "expected a participant of the trial table")
    known = who.isin(list(codes))
    bad(
        known & ~who.map(arm).isin(randomised),
        spec.participant,
        f"expected a participant of a randomised arm {sorted(randomised)}",
    )
    bad(who.duplicated(keep=False), spec.participant, "expected one row per participant")
    later = list(cb.visits[1:])
    bad(~visit.isin(later), spec.visit, f"expected a post-baseline visit {later}")
    bad(~strategy.isin(ICE_STRATEGIES), spec.strategy, f"expected one of {list(ICE_STRATEGIES)}")
    if problems:
        raise ValidationError(problems)
    out = pd.DataFrame({"pid": who.map(codes).astype(int), "visit": visit, "strategy": strategy})
    return out.sort_values("pid", kind="stable").reset_index(drop=True)
