"""The participant flow of CONSORT 2010 (item 13): enrolled, randomised, measured per visit, analysed.

A tidy table of counts, one row per stage x family x visit x estimand x arm, drawn from the long frame,
the trial's description and the fits table. Every randomised participant is accounted for at every
visit: for each outcome family, *measured* (at least one outcome of the family has a value, below the
limit of detection included) plus *missing* (no outcome of the family has a value) is the number
randomised to the arm. Only counts are written, never a participant code.
"""

from __future__ import annotations

import pandas as pd

from pnitrial.data.codebook import ROLES, TRIAL_ROLES
from pnitrial.data.trial import Trial
from pnitrial.failures import is_ok
from pnitrial.report.tables import ESTIMAND_LABELS

__all__ = ["COLUMNS", "STAGES", "flow_readable", "flow_table", "is_primary", "primary_estimands"]

COLUMNS = ["stage", "family", "visit", "estimand", "primary", "arm", "n", "n_max", "note"]
# stage codes in the order CONSORT's diagram reads, with the words of the readable table
STAGES = {
    "enrolled": "Assessed for eligibility",
    "not_randomised": "Not randomised",
    "randomised": "Randomised",
    "healthy_enrolled": "Healthy controls enrolled",
    "measured": "Measured",
    "missing": "Missing",
    "analysed": "Analysed",
}
CENSORED = "clda_censored"


def primary_estimands(fits: pd.DataFrame, primary: str = "clda") -> dict[str, str]:
    """The primary estimand of every outcome of a fits table.

    The censored cLDA replaces the cLDA as primary for an outcome that has it (``lod.method:
    censored`` and values below the limit), as `pnitrial.analyses.estimands.analyse_outcome` decides.

    Parameters
    ----------
    fits : DataFrame
        The fits table (``outcome`` and ``estimand`` columns).
    primary : str, optional
        The configured primary estimand (config ``analysis.primary``).

    Returns
    -------
    dict of str to str
        Outcome key to its primary estimand.

    Examples
    --------
    >>> fits = pd.DataFrame({"outcome": ["crp", "crp", "pain"], "estimand": ["clda", "clda_censored", "clda"]})
    >>> primary_estimands(fits)
    {'crp': 'clda_censored', 'pain': 'clda'}
    """
    out = {}
    for outcome, rows in fits.groupby("outcome", sort=False):
        censored = primary == "clda" and (rows["estimand"] == CENSORED).any()
        out[str(outcome)] = CENSORED if censored else primary
    return out


def is_primary(value) -> bool:
    """Whether a ``primary`` cell says yes, as the table holds it (True) or a CSV gives it back ("True").

    Examples
    --------
    >>> is_primary(True), is_primary("True"), is_primary("False"), is_primary(""), is_primary(float("nan"))
    (True, True, False, False, False)
    """
    return value is True or (isinstance(value, str) and value.strip().lower() == "true") or value == 1


def _families(meta: Trial) -> list[str]:
    return list(dict.fromkeys(o.family for o in meta.outcomes))


def _randomised(frame: pd.DataFrame, meta: Trial) -> dict[str, int]:
    """Participants per role: the trial's counts (every row of the table), else those in the frame."""
    counts = {}
    for role in ROLES:
        in_frame = int(frame.loc[frame["role"] == role, "pid"].nunique())
        n = int(meta.participants.get(role, in_frame)) if meta.participants else in_frame
        if in_frame > n:
            raise ValueError(f"the frame has {in_frame} {role} participants, the trial only {n}")
        counts[role] = n
    return counts


def _row(stage: str, arm: str, n: float, **fields) -> dict:
    return {"stage": stage, "arm": arm, "n": n, **fields}


def _analysed(fits: pd.DataFrame, meta: Trial, primary: str) -> list[dict]:
    """One row per family x estimand (x visit for ANCOVA) x trial arm: fewest and most analysed over outcomes."""
    family_of = {o.key: o.family for o in meta.outcomes}
    fits = fits[fits["outcome"].isin(family_of)].copy()
    fits["family"] = fits["outcome"].map(family_of)
    fits["visit"] = fits["visit"].fillna("").astype(str) if "visit" in fits else ""
    first = primary_estimands(fits, primary)
    # the primary estimand first (with the censored cLDA that stands in for it), then the others
    known = [primary, *([CENSORED] if primary == "clda" else []), *ESTIMAND_LABELS]
    order = sorted(dict.fromkeys(fits["estimand"]), key=lambda e: known.index(e) if e in known else len(known))
    rows = []
    for family in _families(meta):
        for estimand in order:
            sub = fits[(fits["family"] == family) & (fits["estimand"] == estimand)]
            for visit in [v for v in ("", *meta.visits) if v in set(sub["visit"])]:
                cell = sub[sub["visit"] == visit]
                ok = cell[cell["status"].map(is_ok)]
                n_primary = sum(first.get(o) == estimand for o in cell["outcome"])
                notes = [f"{len(cell)} outcome{'s' if len(cell) != 1 else ''}"]
                if n_primary:
                    notes.append("primary" if n_primary == len(cell) else f"primary for {n_primary} of {len(cell)}")
                if len(ok) < len(cell):
                    notes.append(f"{len(cell) - len(ok)} not estimated")
                for role in TRIAL_ROLES:
                    n = ok[f"n_{role}"].astype(float)
                    rows.append(
                        _row(
                            "analysed",
                            meta.arms[role],
                            n.min() if len(n) else float("nan"),
                            family=family,
                            visit=visit,
                            estimand=estimand,
                            primary=n_primary > 0,
                            n_max=n.max() if len(n) else float("nan"),
                            note="; ".join(notes),
                        )
                    )
    return rows


def flow_table(
    frame: pd.DataFrame, meta: Trial, fits: pd.DataFrame | None = None, primary: str = "clda"
) -> pd.DataFrame:
    """The CONSORT participant flow: enrolled, randomised, measured and missing per visit, analysed.

    Stages (column ``stage``), in order:

    - ``enrolled`` and ``not_randomised`` (arm ``all``): only when the codebook gives ``enrolled``;
    - ``randomised``: participants per trial arm (every participant of the table);
    - ``healthy_enrolled``: the healthy control group, not randomised;
    - ``measured`` and ``missing`` per outcome family, visit and arm: measured when at least one
      outcome of the family has a value at the visit (a value below the limit of detection
      counts), missing otherwise, so measured + missing = randomised in every cell. Healthy
      controls are counted at the visits where any of them has a value;
    - ``analysed`` per family, estimand (and visit for ANCOVA; empty for the longitudinal models,
      which use every visit) and trial arm: from the fits table, the fewest (``n``) and most
      (``n_max``) participants over the family's outcomes whose fit was estimated (status ok or
      singular); ``primary`` marks the primary estimand, ``note`` says of how many outcomes.

    Parameters
    ----------
    frame : DataFrame
        The long frame (`pnitrial.data.longframe.build_long_frame`): ``pid``, ``role``, ``visit``,
        ``outcome``, ``value``; missing values have no row.
    meta : Trial
        The trial: arms, visits, outcomes, participants per role (counted from the frame when
        empty) and ``enrolled``.
    fits : DataFrame, optional
        The fits table (``outcome``, ``estimand``, ``visit``, ``n_intervention``, ``n_control``,
        ``status``); without it there are no ``analysed`` rows.
    primary : str, optional
        The configured primary estimand (config ``analysis.primary``); the censored cLDA is primary
        for the outcomes that have it (`primary_estimands`).

    Returns
    -------
    DataFrame
        Columns ``COLUMNS``: ``stage``, ``family``, ``visit``, ``estimand``, ``primary``, ``arm``
        (the arm's label, or ``all``), ``n``, ``n_max`` (analysed rows only) and ``note``.

    Raises
    ------
    ValueError
        When the frame holds more participants of a role than the trial says were randomised.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial(n=6)
    >>> frame = frame[~((frame["pid"] == 0) & (frame["visit"] == "post"))]  # one dropout in MBPM
    >>> table = flow_table(frame, trial)
    >>> print(table[["stage", "visit", "arm", "n"]].to_string(index=False))
         stage visit       arm  n
    randomised            MBPM  3
    randomised       Wait-list  3
      measured   pre      MBPM  3
       missing   pre      MBPM  0
      measured   pre Wait-list  3
       missing   pre Wait-list  0
      measured  post      MBPM  2
       missing  post      MBPM  1
      measured  post Wait-list  3
       missing  post Wait-list  0
    """
    fits = pd.DataFrame(columns=["outcome", "estimand", "visit", "status"]) if fits is None else fits
    randomised = _randomised(frame, meta)
    n_trial = sum(randomised[r] for r in TRIAL_ROLES)
    rows = []
    if meta.enrolled is not None:
        note = "assessed for eligibility (codebook 'enrolled'); healthy controls not included"
        rows.append(_row("enrolled", "all", meta.enrolled, note=note))
        rows.append(_row("not_randomised", "all", meta.enrolled - n_trial, note="assessed but not randomised"))
    for role in TRIAL_ROLES:
        rows.append(_row("randomised", meta.arms[role], randomised[role]))
    healthy = meta.arms.get("healthy") is not None and randomised["healthy"] > 0
    if healthy:
        rows.append(_row("healthy_enrolled", meta.arms["healthy"], randomised["healthy"], note="not randomised"))
    family_of = {o.key: o.family for o in meta.outcomes}
    values = frame[frame["value"].notna() & frame["outcome"].isin(family_of)]
    values = values.assign(family=values["outcome"].map(family_of))
    counts = values.groupby(["family", "visit", "role"])["pid"].nunique()
    healthy_visits = set(values.loc[values["role"] == "healthy", "visit"]) | {meta.baseline}
    for visit in meta.visits:
        roles = [*TRIAL_ROLES, *(["healthy"] if healthy and visit in healthy_visits else [])]
        for family in _families(meta):
            for role in roles:
                n = int(counts.get((family, visit, role), 0))
                arm, where = meta.arms[role], {"family": family, "visit": visit}
                rows.append(_row("measured", arm, n, note=f"a value of at least one {family} outcome", **where))
                rows.append(
                    _row("missing", arm, randomised[role] - n, note=f"no value of any {family} outcome", **where)
                )
    rows += _analysed(fits, meta, primary)
    table = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("n", "n_max"):  # counts: whole numbers, empty where there is none
        table[col] = pd.array([None if pd.isna(v) else int(v) for v in table[col]], dtype="Int64")
    text = ["family", "visit", "estimand", "note"]
    table[text] = table[text].astype(object).where(table[text].notna(), "")
    table["primary"] = table["primary"].astype(object).where(table["stage"] == "analysed", "")
    return table


def _count(n: float, n_max: float = float("nan")) -> str:
    if pd.isna(n):
        return "not estimated"
    if pd.isna(n_max) or n_max == n:
        return f"{int(n)}"
    return f"{int(n)}\u2013{int(n_max)}"


def flow_readable(table: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """The flow table for reading: one line per stage, family, visit and estimand, one column per arm.

    Analysed counts over several outcomes read as a range (``23–25``); ``Total`` adds the two trial arms
    where the count is exact.

    Parameters
    ----------
    table : DataFrame
        The table `flow_table` returns.
    meta : Trial
        The trial, for the arm and visit labels.

    Returns
    -------
    DataFrame
        Columns ``Stage``, ``Visit``, ``Family``, ``Analysis``, the two trial arms, ``Total``, the
        healthy group when it has rows, and ``Note`` (analysed: of how many outcomes).

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial(n=4)
    >>> print(flow_readable(flow_table(frame, trial), trial).iloc[:2, :-1].to_string(index=False))
         Stage          Visit   Family Analysis MBPM Wait-list Total
    Randomised                                     2         2     4
      Measured pre (baseline) clinical             2         2     4
    """
    arms = [meta.arms[r] for r in TRIAL_ROLES]
    healthy = meta.arms.get("healthy")
    cols = ["Stage", "Visit", "Family", "Analysis", *arms, "Total"]
    if healthy is not None and (table["arm"] == healthy).any():
        cols.append(healthy)
    cols.append("Note")
    keys = ["stage", "family", "visit", "estimand"]
    lines = []
    for key, rows in table.groupby(keys, sort=False):
        stage, family, visit, estimand = key
        line = dict.fromkeys(cols, "")
        line["Stage"] = STAGES[stage]
        line["Visit"] = f"{visit} (baseline)" if visit == meta.baseline and "baseline" not in visit.lower() else visit
        line["Family"] = family
        if estimand:
            label = ESTIMAND_LABELS.get(estimand, estimand)
            line["Analysis"] = label + (" (primary)" if is_primary(rows["primary"].iloc[0]) else "")
            line["Note"] = rows["note"].iloc[0]
            if not visit:
                line["Visit"] = "all"
        for r in rows.itertuples():
            line["Total" if r.arm == "all" else r.arm] = _count(r.n, r.n_max)
        trial = rows[rows["arm"].isin(arms)]
        exact = trial["n"].notna() & (trial["n_max"].isna() | (trial["n_max"] == trial["n"]))
        if len(trial) == len(arms) and exact.all():
            line["Total"] = _count(trial["n"].sum())
        lines.append(line)
    return pd.DataFrame(lines, columns=cols)
