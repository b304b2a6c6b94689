"""Table 1: baseline characteristics by arm and healthy group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pnitrial.data.codebook import ROLES
from pnitrial.data.trial import Trial


def _mean_sd(x: pd.Series, digits: int) -> str:
    x = x.dropna()
    if len(x) == 0:
        return "-"
    sd = x.std(ddof=1) if len(x) > 1 else float("nan")
    return f"{x.mean():.{digits}f} ({sd:.{digits}f})"


def _median_iqr(x: pd.Series, digits: int) -> str:
    x = x.dropna()
    if len(x) == 0:
        return "-"
    q1, q2, q3 = np.quantile(x, [0.25, 0.5, 0.75])  # R's type 7
    return f"{q2:.{digits}f} [{q1:.{digits}f}, {q3:.{digits}f}]"


def _digits(x: pd.Series) -> int:
    span = np.nanmedian(np.abs(x)) if len(x) else 1.0
    return 0 if span >= 100 else 1 if span >= 10 else 2


def table1(frame: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """Table 1: baseline characteristics by group.

    Rows are n, each covariate (mean (SD), or n (%) per level) and every outcome at baseline
    (median [IQR] for log outcomes, mean (SD) otherwise); columns are the groups present.
    Quartiles are R's type 7 (Hyndman & Fan 1996, Am Stat 50:361); decimals follow the size of the values.

    Parameters
    ----------
    frame : DataFrame
        The long frame (`pnitrial.data.longframe.build_long_frame`).
    meta : Trial
        The trial it describes.

    Returns
    -------
    DataFrame
        Column ``characteristic`` and one text column per group.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log")
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"),
    ...              covariates={"age": {"type": "numeric"}, "sex": {"type": "categorical", "levels": ["F", "M"]}},
    ...              outcomes=(crp,))
    >>> frame = pd.DataFrame({"pid": [1, 2, 3, 4], "role": ["intervention"] * 2 + ["control"] * 2, "visit": "pre",
    ...                       "age": [40, 50, 45, 61], "sex": ["F", "M", "F", "F"], "outcome": "crp",
    ...                       "value": [1.2, 2.0, 0.8, 3.1]})
    >>> print(table1(frame, meta).to_string(index=False))
              characteristic  A (intervention)       B (control)
                           n                 2                 2
              age, mean (SD)        45.0 (7.1)       53.0 (11.3)
              sex = F, n (%)           1 (50%)          2 (100%)
              sex = M, n (%)           1 (50%)            0 (0%)
    CRP (mg/L), median [IQR] 1.60 [1.40, 1.80] 1.95 [1.38, 2.53]
    """
    groups = [r for r in ROLES if meta.arms.get(r) and (frame["role"] == r).any()]
    headers = [f"{meta.arms[r]} ({r})" if r != "healthy" else meta.arms[r] for r in groups]
    base = frame[frame["visit"] == meta.visits[0]]
    people = base.drop_duplicates("pid")
    rows: list[tuple[str, list[str]]] = [("n", [str(int((people["role"] == r).sum())) for r in groups])]
    for c, kind in meta.covariates.items():
        if kind["type"] == "numeric":
            d = _digits(people[c])
            rows.append((f"{c}, mean (SD)", [_mean_sd(people.loc[people["role"] == r, c], d) for r in groups]))
        else:
            for lev in kind["levels"]:
                cells = []
                for r in groups:
                    s = people.loc[people["role"] == r, c].dropna()
                    k = int((s == lev).sum())
                    cells.append(f"{k} ({100 * k / len(s):.0f}%)" if len(s) else "-")
                rows.append((f"{c} = {lev}, n (%)", cells))
    for o in meta.outcomes:
        sub = base[base["outcome"] == o.key]
        d = _digits(sub["value"])
        if o.is_log:
            label = f"{o.label} ({o.unit}), median [IQR]"
            cells = [_median_iqr(sub.loc[sub["role"] == r, "value"], d) for r in groups]
        else:
            label = f"{o.label} ({o.unit}), mean (SD)"
            cells = [_mean_sd(sub.loc[sub["role"] == r, "value"], d) for r in groups]
        rows.append((label, cells))
    return pd.DataFrame([[k, *v] for k, v in rows], columns=["characteristic", *headers])
