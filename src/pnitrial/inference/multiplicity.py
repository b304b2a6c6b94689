"""Multiplicity adjustment of p-values, as R's p.adjust.

Benjamini-Hochberg and Benjamini-Yekutieli false discovery rate control and Holm's family-wise
step-down, each ignoring NaN p-values (failed fits), and their application within groups of a table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHODS = ("bh", "by", "holm", "none")


def _finite(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    return p, ok


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Step-up FDR control (Benjamini & Hochberg 1995, JRSS B 57:289).

    Parameters
    ----------
    p : array_like
        p-values; NaN entries stay NaN and do not count towards n.

    Returns
    -------
    ndarray
        Adjusted p-values, R's p.adjust(p, "BH").

    Examples
    --------
    >>> p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    >>> benjamini_hochberg(p).round(6).tolist()
    [0.04, 0.053333, 0.053333, nan, 0.2]
    """
    return _step_up(p, dependent=False)


def benjamini_yekutieli(p: np.ndarray) -> np.ndarray:
    """FDR under arbitrary dependence (Benjamini & Yekutieli 2001, Ann Stat 29:1165).

    Parameters
    ----------
    p : array_like
        p-values; NaN entries stay NaN and do not count towards n.

    Returns
    -------
    ndarray
        Adjusted p-values, R's p.adjust(p, "BY").

    Examples
    --------
    >>> p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    >>> benjamini_yekutieli(p).round(6).tolist()
    [0.083333, 0.111111, 0.111111, nan, 0.416667]
    """
    return _step_up(p, dependent=True)


def _step_up(p: np.ndarray, dependent: bool) -> np.ndarray:
    p, ok = _finite(p)
    out = np.full(p.shape, np.nan)
    x = p[ok]
    n = len(x)
    if n == 0:
        return out
    order = np.argsort(x, kind="stable")[::-1]
    ranks = np.arange(n, 0, -1)
    factor = np.sum(1.0 / np.arange(1, n + 1)) if dependent else 1.0
    adj = np.minimum.accumulate(factor * n / ranks * x[order])
    res = np.empty(n)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Step-down family-wise error control (Holm 1979, Scand J Stat 6:65).

    Parameters
    ----------
    p : array_like
        p-values; NaN entries stay NaN and do not count towards n.

    Returns
    -------
    ndarray
        Adjusted p-values, R's p.adjust(p, "holm").

    Examples
    --------
    >>> p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    >>> holm(p).round(6).tolist()
    [0.04, 0.09, 0.09, nan, 0.2]
    """
    p, ok = _finite(p)
    out = np.full(p.shape, np.nan)
    x = p[ok]
    n = len(x)
    if n == 0:
        return out
    order = np.argsort(x, kind="stable")
    adj = np.maximum.accumulate((n - np.arange(n)) * x[order])
    res = np.empty(n)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values; NaN (failed fits) stay NaN and do not count towards n.

    Parameters
    ----------
    p : array_like
        p-values.
    method : {"bh", "by", "holm", "none"}
        Benjamini-Hochberg, Benjamini-Yekutieli, Holm, or no adjustment (a copy).

    Returns
    -------
    ndarray
        Adjusted p-values.

    Raises
    ------
    ValueError
        An unknown method.

    Examples
    --------
    >>> adjust([0.01, 0.04, np.nan], "bh").round(6).tolist()
    [0.02, 0.04, nan]
    >>> adjust([0.01, 0.04], "none").tolist()
    [0.01, 0.04]
    """
    if method == "bh":
        return benjamini_hochberg(p)
    if method == "by":
        return benjamini_yekutieli(p)
    if method == "holm":
        return holm(p)
    if method == "none":
        return np.asarray(p, dtype=float).copy()
    raise ValueError(f"unknown multiplicity method {method!r}; expected one of {METHODS}")


def adjust_within(df: pd.DataFrame, column: str, by: list[str], method: str, out: str) -> pd.DataFrame:
    """Add `out` (p of `column` adjusted within each group of `by`) and p_adjust_method.

    Parameters
    ----------
    df : DataFrame
        A table with a p-value column.
    column : str
        The p-values to adjust; rows where it is missing (or the column is absent) get NaN and "".
    by : list of str
        Columns defining the families adjusted separately.
    method : str
        One of `METHODS`, as for `adjust`.
    out : str
        Name of the new column.

    Returns
    -------
    DataFrame
        A copy of `df` with `out` and p_adjust_method added.

    Examples
    --------
    >>> df = pd.DataFrame({"family": ["a", "a", "b", "b"], "contrast": "post", "p": [0.01, 0.04, 0.03, 0.5]})
    >>> out = adjust_within(df, "p", ["family", "contrast"], "holm", "p_holm")
    >>> out["p_holm"].round(6).tolist(), out["p_adjust_method"].tolist()
    ([0.02, 0.04, 0.06, 0.5], ['holm', 'holm', 'holm', 'holm'])
    """
    df = df.copy()
    df[out] = np.nan
    df["p_adjust_method"] = ""
    has = df[column].notna() if column in df else pd.Series(False, index=df.index)
    for _key, idx in df[has].groupby(by, sort=True).groups.items():
        df.loc[idx, out] = adjust(df.loc[idx, column].to_numpy(dtype=float), method)
        df.loc[idx, "p_adjust_method"] = method
    return df
