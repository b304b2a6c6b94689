"""The numeric output policy: every number written to results/ is rounded here, once.

The R parity tests defend estimates, SEs and p-values to 1e-5..1e-6 relative, so six significant
digits are what pnitrial can stand behind; later digits carry the floating-point noise of the
processor's BLAS and SIMD kernels (1e-16..1e-11 relative) and would make the bytes of results/
depend on the machine. A value is rounded to six significant digits of its *scale*:

- its own magnitude for quantities that span orders of magnitude (p, SE, df, F, variances);
- the row's standard error for locations (estimates, CI bounds, marginal means), so that an
  estimate of 1e-14 (noise around zero) is written as 0 rather than as noise;
- 1 for statistics on a unit scale (t, z, correlations, standardised effects);
- the largest magnitude among the values it is compared with (its column within one outcome,
  or the other coefficients of one model) for the remaining signed, near-zero quantities.

Noise quantities (optimiser gradients) are never written to a hashed file. The rule for a
column is looked up by its name in ``RULES`` (undeclared float columns keep six significant
digits of themselves), so the same column means the same rounding in every table.

Setting ``PNITRIAL_AUDIT_DIR`` makes every call also store the unrounded values it received, so
that a test can measure the cross-kernel noise and each value's distance from its rounding
boundary (tests/report/test_reproducibility.py).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

DIGITS = 6

OWN = "own"  # six significant digits of the value itself
UNIT = "unit"  # scale 1
SE = "se"  # the row's standard error (or its CI half-width over 1.96 where no SE is given)
GROUP = "group"  # the column's largest magnitude within the same outcome (within the table)
RESIDUAL = "var_residual"  # the row's residual variance (variance components of one model)
REFERENCES = ("se", "var_residual")  # columns that set other columns' scales: rounded first
NOISE = frozenset({"gradient_max"})  # rounding noise by nature: logged, never written
FLOAT_FORMAT = "%.15g"  # prints each rounded double as its short decimal (integers without ".0")

RULES: dict[str, str] = {
    # locations: the grid of the row's standard error
    **dict.fromkeys(["estimate", "ci_low", "ci_high", "emmean", "difference"], SE),
    **dict.fromkeys(["var_participant", "var_slope", "cov_intercept_slope"], RESIDUAL),
    # unit-scale statistics and standardised quantities
    **dict.fromkeys(
        ["statistic", "wald_t", "t", "r", "hedges_g", "g_ci_low", "g_ci_high", "value"],
        UNIT,
    ),
    # signed or near-zero quantities compared within an outcome
    **dict.fromkeys(
        [
            "mean_patients",
            "mean_healthy",
            "interaction_change",
            "cooks_distance",
            "reml_criterion",
            "ml_deviance",
            "loglik",
            "aic",
            "bic",
            "fitted",
            "residual",
            "random_effect",
        ],
        GROUP,
    ),
}


def exponent(x: float) -> int:
    """Decimal exponent of x after rounding to DIGITS significant digits (so 9.9999999 counts as 10).

    Parameters
    ----------
    x : float
        A finite, nonzero number.

    Returns
    -------
    int

    Examples
    --------
    >>> exponent(0.0123), exponent(9.9999999), exponent(123456.0)
    (-2, 1, 5)
    """
    return int(f"{x:.{DIGITS - 1}e}".split("e")[1])


def round_at(x: float, scale: float | None = None) -> float:
    """x rounded to DIGITS significant digits of max(|x|, scale); exact decimal rounding (Python's round).

    Parameters
    ----------
    x : float
        The value; None, NaN and infinities are returned as they are.
    scale : float, optional
        The magnitude whose significant digits set the grid (a row's standard error, say); default
        and non-positive or non-finite scales use |x| itself.

    Returns
    -------
    float
        The rounded value, never a negative zero.

    Examples
    --------
    >>> round_at(0.123456789)
    0.123457
    >>> round_at(3.1e-14, scale=0.25)   # noise around zero at the scale of its SE
    0.0
    >>> round_at(-1.23456789, scale=0.01)
    -1.23457
    """
    if x is None or not math.isfinite(x):
        return x
    x = float(x)  # Python's exact decimal round, not numpy's scale-and-rint
    if x == 0:
        return 0.0
    e = exponent(abs(x))
    if scale is not None and math.isfinite(scale) and scale > 0:
        e = max(e, exponent(scale))
    out = round(x, DIGITS - 1 - e)
    return 0.0 if out == 0 else out  # no negative zero


def _column_scales(df: pd.DataFrame, col: str, rule: str) -> np.ndarray | float | None:
    """The scale of every cell of one column under its rule (None: the value's own magnitude)."""
    if rule == UNIT:
        return 1.0
    if rule == RESIDUAL:
        return pd.to_numeric(df[RESIDUAL], errors="coerce").to_numpy(dtype=float) if RESIDUAL in df else None
    if rule == SE:
        scale = pd.Series(np.nan, index=df.index, dtype=float)
        if "se" in df:
            scale = pd.to_numeric(df["se"], errors="coerce").abs()
        if "ci_low" in df and "ci_high" in df:
            half = (pd.to_numeric(df["ci_high"], errors="coerce") - pd.to_numeric(df["ci_low"], errors="coerce")) / 3.92
            scale = scale.where(scale > 0, half.abs())
        return scale.to_numpy(dtype=float)
    if rule == GROUP:
        values = pd.to_numeric(df[col], errors="coerce").abs()
        if "outcome" in df:
            return values.groupby(df["outcome"], sort=False).transform("max").to_numpy(dtype=float)
        return np.full(len(df), values.max(), dtype=float)
    return None


def _is_float_column(s: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(s) or (
        s.dtype == object and s.map(lambda v: isinstance(v, float)).any() and s.map(_numberish).all()
    )


def _numberish(v) -> bool:
    return v is None or isinstance(v, int | float | np.floating) and not isinstance(v, bool)


def round_frame(df: pd.DataFrame, name: str = "") -> pd.DataFrame:
    """A copy of df with every float column rounded by its rule (see RULES); other columns as they are.

    Reference columns (se, CI bounds) are rounded before the columns whose scale they set, so
    rounding a rounded table changes nothing. Noise columns (``NOISE``) are dropped.

    Parameters
    ----------
    df : DataFrame
        A results table.
    name : str, optional
        The table's name, under which the unrounded values are kept when ``PNITRIAL_AUDIT_DIR`` is set.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> df = pd.DataFrame({"estimate": [1e-15, 0.5123456789], "se": [0.2, 0.2], "p": [0.99999999, 1.23456789e-9]})
    >>> round_frame(df).to_dict("list")
    {'estimate': [0.0, 0.512346], 'se': [0.2, 0.2], 'p': [1.0, 1.23457e-09]}
    """
    _audit(name, df)
    out = df.drop(columns=[c for c in df.columns if c in NOISE])
    first = [c for c in REFERENCES if c in out]
    for c in first:
        out[c] = _round_column(out, c)
    # the other columns' scales come from the rounded references and their own unrounded values
    ref = out.copy()
    for col in out.columns:
        if col not in first:
            out[col] = _round_column(ref, col)
    return out


def _round_column(df: pd.DataFrame, col: str) -> pd.Series:
    if not _is_float_column(df[col]):
        return df[col]
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    scales = _column_scales(df, col, RULES.get(col, OWN))
    scales = np.broadcast_to(np.nan if scales is None else scales, values.shape)
    rounded = [round_at(v, s) if math.isfinite(v) else np.nan for v, s in zip(values, scales, strict=True)]
    return pd.Series(rounded, index=df.index, dtype=float)


def round_records(rows: list[dict], name: str = "") -> list[dict]:
    """Records (a list of row dicts, as in the per-model JSON) rounded like a table with those columns.

    A nested dict of numbers (a model's coefficients) is rounded at the scale of its largest entry;
    noise keys (``NOISE``) are dropped.

    Parameters
    ----------
    rows : list of dict
        The records.
    name : str, optional
        Name for the audit of unrounded values (see `round_frame`).

    Returns
    -------
    list of dict
        The records with their numbers rounded; NaN becomes None.

    Examples
    --------
    >>> rows = [{"outcome": "crp", "estimate": 0.123456789, "se": 0.05, "gradient_max": 1e-9,
    ...          "coef": {"a": 1.23456789, "b": 1e-13}}]
    >>> round_records(rows)
    [{'outcome': 'crp', 'estimate': 0.123457, 'se': 0.05, 'coef': {'a': 1.23457, 'b': 0.0}}]
    """
    if not rows:
        return rows
    rows = [{k: v for k, v in r.items() if k not in NOISE} for r in rows]
    flat = pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows])
    rounded = round_frame(flat, name).astype(object)
    rounded = rounded.where(pd.notna(rounded), None)
    out = []
    for i, (r, new) in enumerate(zip(rows, rounded.to_dict("records"), strict=True)):
        row = {k: new[k] if k in new else v for k, v in r.items()}
        for k, v in r.items():
            if isinstance(v, dict):
                row[k] = round_mapping(v, f"{name}/{i}/{k}" if name else "")
        out.append(row)
    return out


def round_mapping(values: dict[str, float], name: str = "") -> dict[str, float]:
    """Numbers compared with each other (one model's coefficients), rounded at the largest one's scale.

    Parameters
    ----------
    values : dict of str to float
        The numbers.
    name : str, optional
        Name for the audit of unrounded values (see `round_frame`).

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> round_mapping({"intercept": 12.3456789, "age": 1.1e-12})
    {'intercept': 12.3457, 'age': 0.0}
    """
    _audit(name, pd.DataFrame({"value": list(values.values())}, index=list(values)))
    finite = [abs(v) for v in values.values() if v is not None and math.isfinite(v)]
    scale = max(finite, default=None)
    return {k: round_at(v, scale) for k, v in values.items()}


def round_array(values: Iterable[float], name: str = "", scale: str | float = "max") -> np.ndarray:
    """An array for a figure rounded at one scale: its largest magnitude (default) or a given number.

    Parameters
    ----------
    values : array_like of float
        The numbers; non-finite ones are kept.
    name : str, optional
        Name for the audit of unrounded values (see `round_frame`).
    scale : 'max' or float, optional
        The scale of `round_at` for every value.

    Returns
    -------
    ndarray of float
        Same shape as `values`.

    Examples
    --------
    >>> round_array([1.23456789, 1e-15, np.nan]).tolist()
    [1.23457, 0.0, nan]
    >>> round_array([0.123456789], scale=100).tolist()
    [0.123]
    """
    arr = np.asarray(values, dtype=float)
    flat = arr.ravel()
    _audit(name, pd.DataFrame({"value": flat}))
    finite = np.abs(flat[np.isfinite(flat)])
    s = (float(finite.max()) if finite.size else None) if scale == "max" else float(scale)
    return np.array([round_at(v, s) if math.isfinite(v) else v for v in flat], dtype=float).reshape(arr.shape)


def rounding_step(x: float, scale: float | None = None) -> float:
    """The grid on which round_at(x, scale) lies: its rounding boundaries are half a step either side.

    Parameters
    ----------
    x : float
        The value.
    scale : float, optional
        As for `round_at`.

    Returns
    -------
    float
        A power of ten: one unit in the last digit `round_at` keeps.

    Examples
    --------
    >>> rounding_step(0.123456789), rounding_step(123.456789)
    (1e-06, 0.001)
    """
    e = exponent(abs(x)) if x else -300
    if scale is not None and math.isfinite(scale) and scale > 0:
        e = max(e, exponent(scale))
    return 10.0 ** (e - DIGITS + 1)


def cell_scales(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The scale round_frame uses for every cell of every float column (NaN: the value's own magnitude).

    Parameters
    ----------
    df : DataFrame
        A results table.

    Returns
    -------
    dict of str to ndarray
        One array of scales per float column that is written (noise columns excepted).

    Examples
    --------
    >>> df = pd.DataFrame({"outcome": ["a", "a", "b"], "estimate": [1.0, 2.0, 3.0], "se": [0.1, 0.2, 0.3],
    ...                    "loglik": [-10.0, -300.0, -5.0]})
    >>> {k: v.tolist() for k, v in cell_scales(df).items()}
    {'estimate': [0.1, 0.2, 0.3], 'se': [nan, nan, nan], 'loglik': [300.0, 300.0, 5.0]}
    """
    out = {}
    for col in df.columns:
        if col in NOISE or not _is_float_column(df[col]):
            continue
        scales = _column_scales(df, col, RULES.get(col, OWN))
        out[col] = np.broadcast_to(np.nan if scales is None else scales, (len(df),)).astype(float)
    return out


def _audit(name: str, df: pd.DataFrame) -> None:
    """Keep the unrounded values for the reproducibility test (only when PNITRIAL_AUDIT_DIR is set)."""
    where = os.environ.get("PNITRIAL_AUDIT_DIR")
    if not where or not name:
        return
    path = Path(where) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".pkl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(df, fh)
