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
    """Numeric when every present value parses as a number, else categorical (sorted levels)."""
    present = cells[~cells.isin(MISSING)]
    numeric = pd.to_numeric(present, errors="coerce")
    if len(present) and numeric.notna().all():
        return {"type": "numeric"}
    return {"type": "categorical", "levels": sorted(set(present.tolist()))}


def base_rows(cb: Codebook, table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Pseudonymised participant code, role, visit and covariates of every row of a validated table."""
    pid_raw = table[cb.participant].str.strip()
    pid = pd.Series(pd.factorize(pid_raw)[0] + 1, index=table.index)
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
    """Validate the table and return the long frame and the typed description of the trial.

    Examples
    --------
    >>> from pnitrial.data.codebook import load_codebook
    >>> frame, trial = build_long_frame(load_codebook("data/demo/dataset.yaml"))  # doctest: +SKIP
    >>> trial.visits, list(frame.columns[:4])  # doctest: +SKIP
    (('pre', 'post'), ['pid', 'role', 'visit', 'visit_index'])
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
    )
    return frame, meta


def lod_counts(frame: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """Below-LOD counts per outcome, arm and visit (the substitution is reported, not hidden)."""
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
    frame.to_csv(frame_path, index=False, lineterminator="\n", float_format=None)
    meta_path.write_text(meta.to_json())


def read_frame(frame_path: Path, meta_path: Path) -> tuple[pd.DataFrame, Trial]:
    """The long frame with its column types, and the trial it describes (meta.json)."""
    meta = Trial.read(meta_path)
    dtypes = {c: str for c, k in meta.covariates.items() if k["type"] == "categorical"}
    # values are float64 whatever the table held (integer scores too), so no analysis writes a float into ints
    dtypes.update(visit=str, role=str, outcome=str, value=float, lod=float)
    frame = pd.read_csv(frame_path, dtype=dtypes)
    return frame, meta
