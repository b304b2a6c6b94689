"""From a validated table to the tidy, pseudonymised long frame every model reads.

One row per participant x visit x outcome with a value (observed or censored).
Participant identifiers are replaced by sequential codes here, so nothing
downstream can show them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.data.codebook import ROLES, Codebook
from pnitrial.data.table import MISSING, read_table
from pnitrial.data.trial import Trial
from pnitrial.data.validate import parse_outcome, validate_table

LOD_RULES = {"sqrt2": 1 / np.sqrt(2), "half": 0.5, "lod": 1.0}
# with lod.method `censored` the censored model uses the limits; substituted values (LOD/sqrt(2))
# remain for the other estimands, the figures and the secondary analyses
LOD_METHODS = (*LOD_RULES, "censored")


def covariate_kind(cells: pd.Series) -> dict:
    """Classify a covariate: numeric when every present value parses as a number, else categorical.

    Parameters
    ----------
    cells : Series of str
        The covariate's stripped cells; those in ``MISSING`` are ignored.

    Returns
    -------
    dict
        ``{'type': 'numeric'}``, or ``{'type': 'categorical', 'levels': [...]}`` with the sorted levels.

    Examples
    --------
    >>> covariate_kind(pd.Series(["47", "52.5", ""]))
    {'type': 'numeric'}
    >>> covariate_kind(pd.Series(["F", "M", "NA", "F"]))
    {'type': 'categorical', 'levels': ['F', 'M']}
    """
    present = cells[~cells.isin(MISSING)]
    numeric = pd.to_numeric(present, errors="coerce")
    if len(present) and numeric.notna().all():
        return {"type": "numeric"}
    return {"type": "categorical", "levels": sorted(set(present.tolist()))}


def pseudonyms(cb: Codebook, table: pd.DataFrame) -> dict[str, int]:
    """The pseudonymised code of every participant of the trial table: 1, 2, ... in order of first appearance.

    Examples
    --------
    >>> from pathlib import Path
    >>> cb = Codebook(Path("d.yaml"), Path("t.csv"), "demo", "id", "arm", "visit", "A", "B", None, ("pre",), (), ())
    >>> pseudonyms(cb, pd.DataFrame({"id": ["p2", "p2 ", "p1"]}))
    {'p2': 1, 'p1': 2}
    """
    uniques = pd.unique(table[cb.participant].str.strip())
    return {str(u): i + 1 for i, u in enumerate(uniques)}


def base_rows(cb: Codebook, table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Pseudonymised participant code, role, visit and covariates of every row of a validated table.

    Participants are coded 1, 2, ... in order of first appearance; the identifiers are dropped.

    Parameters
    ----------
    cb : Codebook
        The codebook.
    table : DataFrame
        The trial table, validated by `validate_table` (text cells).

    Returns
    -------
    base : DataFrame
        Columns ``pid``, ``role`` (``'intervention'``, ``'control'`` or ``'healthy'``), ``visit``,
        ``visit_index`` (0 at baseline) and one per covariate (numbers, or labels with NaN for missing).
    kinds : dict
        The `covariate_kind` of every covariate.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1)
    >>> cb = Codebook(Path("dataset.yaml"), Path("trial.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...               ("pre", "post"), ("age",), (crp,))
    >>> table = pd.DataFrame({"id": ["p1", "p1", "p2", "p2"], "arm": ["A", "A", "B", "B"],
    ...                       "visit": ["pre", "post", "pre", "post"], "age": ["41", "41", "", ""]})
    >>> base, kinds = base_rows(cb, table)
    >>> base[["pid", "role", "visit_index"]].to_dict("list")
    {'pid': [1, 1, 2, 2], 'role': ['intervention', 'intervention', 'control', 'control'], 'visit_index': [0, 1, 0, 1]}
    >>> kinds
    {'age': {'type': 'numeric'}}
    """
    pid = table[cb.participant].str.strip().map(pseudonyms(cb, table))
    role = (
        table[cb.arm]
        .str.strip()
        .map(
            {cb.intervention: "intervention", cb.control: "control", **({cb.healthy: "healthy"} if cb.healthy else {})}
        )
    )
    visit = table[cb.visit].str.strip()
    base = pd.DataFrame(
        {
            "pid": pid,
            "role": role,
            "visit": visit,
            "visit_index": visit.map({v: i for i, v in enumerate(cb.visits)}).astype(int),
        }
    )
    kinds = {}
    for c in cb.covariates:
        kinds[c] = covariate_kind(table[c].str.strip())
        cells = table[c].str.strip().where(~table[c].str.strip().isin(MISSING))
        base[c] = pd.to_numeric(cells) if kinds[c]["type"] == "numeric" else cells
    return base, kinds


def build_long_frame(cb: Codebook, lod_method: str = "sqrt2", min_per_arm: int = 3) -> tuple[pd.DataFrame, Trial]:
    r"""Validate the table and return the long frame and the typed description of the trial.

    A below-LOD cell becomes a censored row whose value is the limit times the `lod_method` factor
    (LOD/sqrt(2) for ``'sqrt2'`` and ``'censored'``, LOD/2 for ``'half'``, the LOD for ``'lod'``);
    a zero of a log outcome with a limit counts as below it. Missing cells have no row.
    LOD/sqrt(2) is Hornung & Reed's substitution (1990, Appl Occup Environ Hyg 5:46).

    Parameters
    ----------
    cb : Codebook
        The codebook; its trial table is read and validated.
    lod_method : {'sqrt2', 'half', 'lod', 'censored'}, optional
        How below-LOD values are substituted (config lod.method).
    min_per_arm : int, optional
        Fewest participants per trial arm (config validation.min_per_arm).

    Returns
    -------
    frame : DataFrame
        One row per participant x visit x outcome with a value: ``pid``, ``role``, ``visit``,
        ``visit_index``, the covariates, ``outcome``, ``value``, ``censored`` (0/1) and ``lod``.
    trial : Trial
        Arms, visits, covariate kinds, outcomes and participants per group.

    Raises
    ------
    ValidationError
        When the table does not match the codebook.

    Examples
    --------
    >>> import tempfile
    >>> import yaml
    >>> from pnitrial.data.codebook import load_codebook
    >>> spec = {"table": "trial.csv", "columns": {"participant": "id", "arm": "arm", "visit": "visit"},
    ...         "arms": {"intervention": "A", "control": "B"}, "visits": ["pre", "post"],
    ...         "outcomes": {"crp": {"label": "CRP", "unit": "mg/L", "family": "biomarker", "transform": "log",
    ...                              "lod": 0.1}}}
    >>> rows = ["id,arm,visit,crp", "p1,A,pre,1.2", "p1,A,post,<0.1", "p2,B,pre,2.5", "p2,B,post,3.1"]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "trial.csv").write_text("\n".join(rows) + "\n")
    ...     _ = (Path(tmp) / "dataset.yaml").write_text(yaml.safe_dump(spec))
    ...     frame, trial = build_long_frame(load_codebook(Path(tmp) / "dataset.yaml"), min_per_arm=1)
    >>> trial.visits, trial.participants
    (('pre', 'post'), {'intervention': 1, 'control': 1, 'healthy': 0})
    >>> list(frame.columns)
    ['pid', 'role', 'visit', 'visit_index', 'outcome', 'value', 'censored', 'lod']
    >>> frame["value"].round(6).tolist(), frame["censored"].tolist()
    ([1.2, 0.070711, 2.5, 3.1], [0, 1, 0, 0])
    """
    table = read_table(cb.table)
    validate_table(cb, table, min_per_arm=min_per_arm)
    if lod_method not in LOD_METHODS:
        raise ValueError(f"unknown lod method {lod_method!r}; expected one of {LOD_METHODS}")
    factor = LOD_RULES.get(lod_method, LOD_RULES["sqrt2"])
    base, kinds = base_rows(cb, table)
    pid, role = base["pid"], base["role"]
    parts = []
    for o in cb.outcomes:
        parsed, _ = parse_outcome(table[o.column], o)
        value = np.where(parsed.censored, parsed.lod * factor, parsed.value)
        if o.is_log and o.lod is not None:
            # a zero concentration is below any detection limit
            zero = value == 0
            parsed.censored[zero] = True
            parsed.lod[zero] = o.lod
            value = np.where(zero, o.lod * factor, value)
        part = base.assign(
            outcome=o.key, value=value.astype(float), censored=parsed.censored.astype(int), lod=parsed.lod
        )
        parts.append(part[np.isfinite(value)])
    # a panel-only trial has no outcome rows: an empty frame with the columns every reader expects
    empty = base.iloc[:0].assign(outcome="", value=0.0, censored=0, lod=0.0)
    frame = pd.concat(parts, ignore_index=True) if parts else empty
    frame = frame.sort_values(["outcome", "pid", "visit_index"], kind="stable").reset_index(drop=True)
    meta = Trial(
        name=cb.name,
        arms={"intervention": cb.intervention, "control": cb.control, "healthy": cb.healthy},
        visits=tuple(cb.visits),
        visit_times=dict(cb.visit_times),
        covariates=kinds,
        outcomes=tuple(cb.outcomes),
        lod_method=lod_method,
        participants={r: int(pid[role == r].nunique()) for r in ROLES},
        enrolled=cb.enrolled,
    )
    return frame, meta


def lod_counts(frame: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """Below-LOD counts per outcome, arm and visit (the substitution is reported, not hidden).

    Parameters
    ----------
    frame : DataFrame
        The long frame (`build_long_frame`).
    meta : Trial
        The trial it describes; only outcomes with a limit of detection are counted.

    Returns
    -------
    DataFrame
        Columns ``outcome``, ``arm``, ``visit``, ``n``, ``n_below_lod``, ``percent_below_lod``,
        ``lod`` and ``method`` (how the censored values were handled).

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1)
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"), outcomes=(crp,))
    >>> frame = pd.DataFrame({"outcome": "crp", "role": ["intervention"] * 2 + ["control"] * 2,
    ...                       "visit": ["pre", "post"] * 2, "censored": [0, 1, 0, 0]})
    >>> lod_counts(frame, meta)[["arm", "visit", "n", "n_below_lod", "percent_below_lod"]]
      arm visit  n  n_below_lod  percent_below_lod
    0   A   pre  1            0                0.0
    1   A  post  1            1              100.0
    2   B   pre  1            0                0.0
    3   B  post  1            0                0.0
    """
    rows = []
    lod_outcomes = [o for o in meta.outcomes if o.lod is not None]
    for o in lod_outcomes:
        sub = frame[frame["outcome"] == o.key]
        for role in ROLES:
            for v in meta.visits:
                cell = sub[(sub["role"] == role) & (sub["visit"] == v)]
                if len(cell) == 0:
                    continue
                k = int(cell["censored"].sum())
                rows.append(
                    {
                        "outcome": o.key,
                        "arm": meta.arms[role],
                        "visit": v,
                        "n": len(cell),
                        "n_below_lod": k,
                        "percent_below_lod": round(100 * k / len(cell), 1),
                        "lod": o.lod,
                        "method": "censored model (values LOD/sqrt(2) elsewhere)"
                        if meta.lod_method == "censored"
                        else meta.lod_method,
                    }
                )
    cols = ["outcome", "arm", "visit", "n", "n_below_lod", "percent_below_lod", "lod", "method"]
    return pd.DataFrame(rows, columns=cols)


def write_frame(frame: pd.DataFrame, meta: Trial, frame_path: Path, meta_path: Path) -> None:
    """Write the long frame (CSV) and its trial description (meta.json) for the jobs that follow.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial it describes.
    frame_path, meta_path : Path
        Where to write them; `read_frame` reads them back.

    Examples
    --------
    >>> import tempfile
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"))
    >>> frame = pd.DataFrame({"pid": [1, 1], "role": "intervention", "visit": ["pre", "post"],
    ...                       "outcome": "crp", "value": [1.2, 0.8]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_frame(frame, meta, Path(tmp) / "long.csv", Path(tmp) / "meta.json")
    ...     again, meta_again = read_frame(Path(tmp) / "long.csv", Path(tmp) / "meta.json")
    >>> again.equals(frame), meta_again == meta
    (True, True)
    """
    frame.to_csv(frame_path, index=False, lineterminator="\n", float_format=None)
    meta_path.write_text(meta.to_json())


def read_frame(frame_path: Path, meta_path: Path) -> tuple[pd.DataFrame, Trial]:
    """The long frame with its column types, and the trial it describes (meta.json).

    Categorical covariates, ``visit``, ``role`` and ``outcome`` are read as text, ``value`` and
    ``lod`` as floats (whatever the table held).

    Parameters
    ----------
    frame_path, meta_path : Path
        The files `write_frame` wrote.

    Returns
    -------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.

    Examples
    --------
    >>> import tempfile
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"))
    >>> frame = pd.DataFrame({"pid": [1, 1], "role": "control", "visit": ["1", "2"], "outcome": "pain",
    ...                       "value": [4, 3]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_frame(frame, meta, Path(tmp) / "long.csv", Path(tmp) / "meta.json")
    ...     again, _ = read_frame(Path(tmp) / "long.csv", Path(tmp) / "meta.json")
    >>> again["visit"].tolist(), again["value"].tolist()
    (['1', '2'], [4.0, 3.0])
    """
    meta = Trial.read(meta_path)
    dtypes = {c: str for c, k in meta.covariates.items() if k["type"] == "categorical"}
    # values are float64 whatever the table held (integer scores too), so no analysis writes a float into ints
    dtypes.update(visit=str, role=str, outcome=str, value=float, lod=float)
    frame = pd.read_csv(frame_path, dtype=dtypes)
    return frame, meta
