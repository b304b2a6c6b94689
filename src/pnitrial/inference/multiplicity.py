"""Multiplicity adjustment of p-values, as R's p.adjust."""

from __future__ import annotations

import numpy as np
import pandas as pd

METHODS = ("bh", "by", "holm", "none")


def _finite(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    return p, ok


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Step-up FDR control (Benjamini & Hochberg 1995, JRSS B 57:289)."""
    return _step_up(p, dependent=False)


def benjamini_yekutieli(p: np.ndarray) -> np.ndarray:
    """FDR under arbitrary dependence (Benjamini & Yekutieli 2001, Ann Stat 29:1165)."""
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
    """Step-down family-wise error control (Holm 1979, Scand J Stat 6:65)."""
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
    """Adjusted p-values; NaN (failed fits) stay NaN and do not count towards n."""
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
    """Add `out` (p of `column` adjusted within each group of `by`) and p_adjust_method."""
    df = df.copy()
    df[out] = np.nan
    df["p_adjust_method"] = ""
    has = df[column].notna() if column in df else pd.Series(False, index=df.index)
    for _key, idx in df[has].groupby(by, sort=True).groups.items():
        df.loc[idx, out] = adjust(df.loc[idx, column].to_numpy(dtype=float), method)
        df.loc[idx, "p_adjust_method"] = method
    return df
