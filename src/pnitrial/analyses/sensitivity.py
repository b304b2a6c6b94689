"""Sensitivity of the intervention effect at the last visit, side by side on the model scale.

Rows per outcome: the primary analysis (all available data); the same estimand refitted on complete
cases, with outliers winsorised or excluded, and under each other below-LOD substitution; the
difference in mean change of the complete cases with the mixed ANOVA's interaction F (pingouin);
and the Hodges-Lehmann shift of the change scores with the Wilcoxon-Mann-Whitney test.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import optimize, stats

from pnitrial.analyses.estimands import CENSORED, AnalysisOptions, analyse_outcome, has_censored
from pnitrial.analyses.panel import analyse_panel, wide_from_long
from pnitrial.data.codebook import TRIAL_ROLES
from pnitrial.data.longframe import LOD_RULES
from pnitrial.data.trial import Trial
from pnitrial.failures import attempt
from pnitrial.progress import track

COLUMNS = [
    "outcome",
    "family",
    "analysis",
    "estimand",
    "visit",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic",
    "statistic_type",
    "df",
    "p",
    "n_participants",
    "n_changed",
    "method",
    "status",
]
OUTLIER_METHODS = ("none", "winsorise", "exclude")
LOD_LABELS = {"sqrt2": "LOD/sqrt(2)", "half": "LOD/2", "lod": "LOD"}


# -- Wilcoxon-Mann-Whitney and the Hodges-Lehmann shift, as R's wilcox.test(x, y, conf.int = TRUE)


def wilcoxon_null_counts(m: int, n: int) -> np.ndarray:
    """Counts of U = 0..mn over the C(m+n, m) orderings (Mann & Whitney 1947, Ann Math Stat 18:50).

    Parameters
    ----------
    m, n : int
        Sizes of the two samples.

    Returns
    -------
    ndarray, shape (m n + 1,)
        Number of orderings with each value of U (float, to divide into probabilities).

    Examples
    --------
    >>> wilcoxon_null_counts(2, 2).tolist()
    [1.0, 1.0, 2.0, 1.0, 1.0]
    >>> int(wilcoxon_null_counts(3, 3).sum())  # C(6, 3)
    20
    """
    # c(m, n) = c(m - 1, n) shifted by n (the largest item is an x) + c(m, n - 1) (it is a y)
    prev = [np.ones(1) for _ in range(n + 1)]  # m = 0: U = 0 whatever n
    for i in range(1, m + 1):
        cur = [np.ones(1)]  # n = 0: U = 0
        for j in range(1, n + 1):
            c = np.zeros(i * j + 1)
            c[j : j + len(prev[j])] += prev[j]
            c[: len(cur[j - 1])] += cur[j - 1]
            cur.append(c)
        prev = cur
    return prev[n]


def hodges_lehmann(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> dict:
    """Shift x - y: median of pairwise differences with its rank interval (Hodges & Lehmann 1963, Ann Math Stat 34:598).

    Exact when both samples have fewer than 50 values and no ties, else the normal approximation
    with continuity correction and the interval found by root search, as R's wilcox.test.

    Parameters
    ----------
    x, y : array_like
        The two samples.
    alpha : float
        1 - confidence level of the interval.

    Returns
    -------
    dict
        estimate, ci_low, ci_high, p (two-sided Wilcoxon-Mann-Whitney), method ("exact" or
        "normal approximation") and W (R's statistic, the Mann-Whitney U of x).

    Examples
    --------
    >>> hl = hodges_lehmann([1.2, 3.4, 2.2, 5.0], [0.1, 1.1, 0.7])
    >>> hl["estimate"], round(hl["ci_low"], 6), hl["ci_high"], round(hl["p"], 6), hl["method"], hl["W"]
    (2.2, 0.1, 4.9, 0.057143, 'exact', 12.0)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    m, n = len(x), len(y)
    ranks = stats.rankdata(np.concatenate([x, y]))
    w = float(ranks[:m].sum() - m * (m + 1) / 2)
    ties = len(np.unique(ranks)) < m + n
    if m < 50 and n < 50 and not ties:
        # the m n pairwise differences only where they are needed: for 25,000 per arm they would take 5 GB
        diffs = np.sort(np.subtract.outer(x, y).ravel())
        return {"estimate": float(np.median(diffs)), **_exact_wilcoxon(w, diffs, m, n, alpha), "W": w}
    return {**_asymptotic_wilcoxon(x, y, w, alpha), "W": w}


def _exact_wilcoxon(w: float, diffs: np.ndarray, m: int, n: int, alpha: float) -> dict:
    counts = wilcoxon_null_counts(m, n)
    cdf = np.cumsum(counts) / counts.sum()
    lower = cdf[int(w)]
    upper = 1.0 - (cdf[int(w) - 1] if w >= 1 else 0.0)
    p = min(2 * (upper if w > m * n / 2 else lower), 1.0)
    qu = max(int(np.searchsorted(cdf, alpha / 2 - 10 * np.finfo(float).eps)), 1)  # R's qwilcox(alpha/2)
    ql = m * n - qu
    return {"ci_low": float(diffs[qu - 1]), "ci_high": float(diffs[ql]), "p": float(p), "method": "exact"}


def _asymptotic_wilcoxon(x: np.ndarray, y: np.ndarray, w: float, alpha: float) -> dict:
    m, n = len(x), len(y)

    def z_of(d: float, correct: bool) -> float:
        r = stats.rankdata(np.concatenate([x - d, y]))
        _, t = np.unique(r, return_counts=True)
        dz = r[:m].sum() - m * (m + 1) / 2 - m * n / 2
        sigma = math.sqrt(m * n / 12 * ((m + n + 1) - float((t**3 - t).sum()) / ((m + n) * (m + n - 1))))
        return (dz - (np.sign(dz) * 0.5 if correct else 0.0)) / sigma

    p = float(2 * stats.norm.sf(abs(z_of(0.0, True))))
    lo_d, hi_d = float(x.min() - y.max()), float(x.max() - y.min())

    def root(zq: float, correct: bool) -> float:
        f_lo, f_hi = z_of(lo_d, correct) - zq, z_of(hi_d, correct) - zq
        if f_lo <= 0:
            return lo_d
        if f_hi >= 0:
            return hi_d
        # Brent's zeroin with R's uniroot tolerance (1e-4), so the step function's root is R's
        return float(
            optimize.brentq(lambda d: z_of(d, correct) - zq, lo_d, hi_d, xtol=1e-4, rtol=4 * np.finfo(float).eps)
        )

    q = float(stats.norm.ppf(1 - alpha / 2))
    return {
        "estimate": root(0.0, False),
        "ci_low": root(q, True),
        "ci_high": root(-q, True),
        "p": p,
        "method": "normal approximation",
    }


# -- data variants


def change_scores(frame: pd.DataFrame, meta: Trial, key: str) -> dict[str, pd.Series]:
    """Model-scale change from the first to the last visit per trial participant, by role.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.

    Returns
    -------
    dict of str to Series
        For "intervention" and "control": last minus first visit, indexed by pid (participants
        with both visits); empty Series when a visit has no values.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> changes = change_scores(frame, meta, "pain")
    >>> changes["intervention"].tolist(), changes["control"].tolist()
    ([-2.5, -2.0, -2.5], [-0.5, -0.5, 0.0])
    """
    sub = frame[(frame["outcome"] == key) & frame["role"].isin(TRIAL_ROLES)]
    outcome = meta.outcome(key)
    y = outcome.model_scale(sub["value"])
    wide = sub.assign(y=y).pivot_table(index=["pid", "role"], columns="visit_index", values="y")
    last = len(meta.visits) - 1
    if 0 not in wide or last not in wide:
        return {r: pd.Series(dtype=float) for r in TRIAL_ROLES}
    ch = (wide[last] - wide[0]).dropna()
    return {r: ch.xs(r, level="role") for r in TRIAL_ROLES}


def complete_cases(frame: pd.DataFrame, meta: Trial, key: str) -> pd.DataFrame:
    """The outcome's rows of the participants observed at every visit (other outcomes untouched).

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.

    Returns
    -------
    DataFrame
        `frame` without the outcome's rows of participants missing a visit.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> gap = frame.drop(index=3)  # participant 2 misses the post visit
    >>> sorted(complete_cases(gap, meta, "pain")["pid"].unique().tolist())
    [1, 3, 4, 5, 6]
    """
    sub = frame[frame["outcome"] == key]
    n_visits = sub.groupby("pid")["visit_index"].nunique()
    keep = n_visits.index[n_visits == len(meta.visits)]
    return frame[(frame["outcome"] != key) | frame["pid"].isin(keep)]


ROBUST_SD = 1.482602218505602  # 1 / Phi^-1(3/4): the MAD of a normal sample estimates its SD


def handle_outliers(frame: pd.DataFrame, meta: Trial, key: str, method: str, k: float) -> tuple[pd.DataFrame, int]:
    """Winsorise or exclude values beyond k robust SD of their visit's median on the model scale (trial arms).

    The robust SD is 1.4826 x the median absolute deviation (Hampel 1974, JASA 69:383), so an outlier
    cannot widen its own threshold as it does a mean and SD. A visit whose MAD is 0 (most values tied)
    has no outliers by this rule.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.
    method : {"none", "winsorise", "exclude"}
        Clip to the threshold, drop the row, or leave the data alone.
    k : float
        Threshold in robust SDs.

    Returns
    -------
    frame : DataFrame
        The frame with the outcome's outliers handled.
    n : int
        Values beyond the threshold.

    Raises
    ------
    ValueError
        An unknown method.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> frame.loc[11, "value"] = 20.0  # an implausible post value
    >>> out, n = handle_outliers(frame, meta, "pain", "winsorise", 3.0)
    >>> n, round(float(out.loc[11, "value"]), 4)
    (1, 9.1978)
    >>> out, n = handle_outliers(frame, meta, "pain", "exclude", 3.0)
    >>> n, len(out)
    (1, 11)
    """
    if method not in OUTLIER_METHODS:
        raise ValueError(f"unknown outlier method {method!r}; expected one of {OUTLIER_METHODS}")
    outcome = meta.outcome(key)
    logged = outcome.is_log
    sel = (frame["outcome"] == key) & frame["role"].isin(TRIAL_ROLES)
    sub = frame[sel]
    y = (np.log(sub["value"]) if logged else sub["value"]).astype(float)
    g = y.groupby(sub["visit_index"])
    med = g.transform("median")
    scale = ROBUST_SD * (y - med).abs().groupby(sub["visit_index"]).transform("median")
    low, high = med - k * scale, med + k * scale
    beyond = ((y < low) | (y > high)) & (scale > 0)
    if method == "none" or not beyond.any():
        return frame, 0
    if method == "exclude":
        return frame.drop(index=sub.index[beyond.to_numpy()]), int(beyond.sum())
    clipped = y.clip(low, high)
    out = frame.astype({"value": float})
    out.loc[sub.index, "value"] = np.exp(clipped) if logged else clipped
    return out, int(beyond.sum())


def resubstitute(frame: pd.DataFrame, key: str, lod_method: str) -> pd.DataFrame:
    """The outcome's below-LOD values substituted by another rule (LOD x factor).

    Parameters
    ----------
    frame : DataFrame
        The long frame (columns censored and lod).
    key : str
        Outcome key.
    lod_method : {"sqrt2", "half", "lod"}
        LOD/sqrt(2), LOD/2 or the LOD itself.

    Returns
    -------
    DataFrame
        A copy with the outcome's censored values replaced.

    Examples
    --------
    >>> frame = pd.DataFrame({"outcome": "il6", "value": [2.83, 5.1], "censored": [1, 0], "lod": [4.0, np.nan]})
    >>> resubstitute(frame, "il6", "half")["value"].tolist()
    [2.0, 5.1]
    """
    sel = (frame["outcome"] == key) & (frame["censored"] == 1)
    out = frame.copy()
    out.loc[sel, "value"] = out.loc[sel, "lod"] * LOD_RULES[lod_method]
    return out


# -- one outcome


@dataclass(frozen=True)
class _Refit:
    """A row still to fill: the primary estimand (or `estimand`) refitted on a variant of the data."""

    key: str
    analysis: str
    frame: pd.DataFrame
    n: int | None
    changed: int | None
    opts: AnalysisOptions
    estimand: str | None = None

    def target(self) -> str:
        """The estimand whose effect the row reports (as analyses.estimands chooses the primary)."""
        if self.estimand:
            return self.estimand
        censored = self.opts.censored and has_censored(self.frame, self.key)
        return CENSORED if censored and self.opts.primary == "clda" else self.opts.primary


def _effect_values(effects, estimand: str, visit: str) -> dict:
    """The row values of `estimand`'s model-scale interaction at `visit` among effect rows."""
    rows = [
        e
        for e in effects
        if e["estimand"] == estimand and e["scale"] == "model" and e["contrast"] == f"interaction:{visit}"
    ]
    if not rows:
        return {"status": "failed: no primary effect"}
    e = rows[0]
    return {
        "estimand": e["estimand"],
        "estimate": e["estimate"],
        "ci_low": e["ci_low"],
        "ci_high": e["ci_high"],
        "statistic": e["statistic"],
        "statistic_type": e["statistic_type"],
        "df": e["df"],
        "p": e["p"],
        "method": e["ddf_method"],
        "status": e["fit_status"],
    }


def _refit_one(r: _Refit, meta: Trial, visit: str) -> dict:
    """One refit through the single-outcome path (censored models, or when a batch fails)."""
    res = analyse_outcome(r.frame, meta, r.key, r.opts)
    return _effect_values(res.effects, r.target(), visit)


def _refit_batched(
    refits: list[_Refit], frame: pd.DataFrame, meta: Trial, opts: AnalysisOptions, visit: str
) -> list[dict | None]:
    """Every uncensored refit as one column of a panel, fitted in one batch per model scale.

    The variants of all outcomes share the participant x visit grid, so analyses.panel fits them
    together (one design, one batched optimiser, the same inference as a single fit). Censored
    models, and every refit of a batch that fails as a whole, come back as None for `_refit_one`.
    """
    out: list[dict | None] = [None] * len(refits)
    ready = [i for i, r in enumerate(refits) if r.opts == opts and r.target() != CENSORED]
    if not ready:
        return out
    grid, _ = wide_from_long(frame, meta, [refits[ready[0]].key])
    index = pd.MultiIndex.from_frame(grid[["pid", "visit_index"]])
    for transform in ("none", "log"):
        cols = [i for i in ready if meta.outcome(refits[i].key).transform == transform]
        if not cols:
            continue
        values = np.column_stack([_column(refits[i], index) for i in cols])
        names = [f"v{i}" for i in cols]
        panel = {"analytes": names, "family": "", "transform": transform, "unit": ""}
        got, failed = attempt("sensitivity refits", analyse_panel, grid, values, meta, panel, opts)
        if failed is not None:
            continue
        effects = got[0].to_dict("records")
        by_name: dict[str, list[dict]] = {}
        for e in effects:
            by_name.setdefault(e["outcome"], []).append(e)
        for i, name in zip(cols, names, strict=True):
            out[i] = _effect_values(by_name.get(name, []), refits[i].target(), visit)
    return out


def _column(r: _Refit, index: pd.MultiIndex) -> np.ndarray:
    """The refit's outcome values on the shared participant x visit grid (NaN where it has none)."""
    sub = r.frame.loc[r.frame["outcome"] == r.key, ["pid", "visit_index", "value"]]
    at = pd.MultiIndex.from_frame(sub[["pid", "visit_index"]])
    return pd.Series(sub["value"].to_numpy(dtype=float), index=at).reindex(index).to_numpy()


def mixed_anova_row(frame: pd.DataFrame, meta: Trial, key: str, alpha: float) -> dict:
    """Difference in mean change (complete cases, pooled t CI) and the mixed ANOVA interaction F.

    The F test is pingouin's mixed_anova (Vallat 2018, J Open Source Softw 3:1026) of visit x arm.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.
    alpha : float
        1 - confidence level of the interval.

    Returns
    -------
    dict
        estimate, ci_low, ci_high, statistic (F), statistic_type, df (denominator), p,
        n_participants, method and status; only status when an arm has fewer than 2 complete cases.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> row = mixed_anova_row(frame, meta, "pain", 0.05)
    >>> round(row["estimate"], 6), round(row["statistic"], 4), row["df"], round(row["p"], 6)
    (-2.0, 72.0, 4.0, 0.001058)
    """
    data = complete_cases(frame, meta, key)
    sub = data[(data["outcome"] == key) & data["role"].isin(TRIAL_ROLES)]
    outcome = meta.outcome(key)
    sub = sub.assign(y=outcome.model_scale(sub["value"]))
    ch = change_scores(data, meta, key)
    a, b = ch["intervention"].to_numpy(), ch["control"].to_numpy()
    if len(a) < 2 or len(b) < 2:
        return {"status": "failed: fewer than 2 complete cases in an arm"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aov = pg.mixed_anova(data=sub, dv="y", within="visit_index", between="role", subject="pid")
    inter = aov[aov["Source"] == "Interaction"].iloc[0]
    tt = stats.ttest_ind(a, b, equal_var=True)
    ci = tt.confidence_interval(1 - alpha)
    return {
        "estimate": float(a.mean() - b.mean()),
        "ci_low": float(ci.low),
        "ci_high": float(ci.high),
        "statistic": float(inter["F"]),
        "statistic_type": "F",
        "df": float(inter["DF2"]),
        "p": float(inter["p_unc"] if "p_unc" in inter else inter["p-unc"]),
        "n_participants": len(a) + len(b),
        "method": "pingouin.mixed_anova; CI from the pooled t test of the changes",
        "status": "ok",
    }


def hodges_lehmann_row(frame: pd.DataFrame, meta: Trial, key: str, alpha: float) -> dict:
    """Hodges-Lehmann shift of the change scores (intervention - control) with the Wilcoxon-Mann-Whitney test.

    Hodges & Lehmann 1963 (Ann Math Stat 34:598), computed by `hodges_lehmann`.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.
    alpha : float
        1 - confidence level of the interval.

    Returns
    -------
    dict
        estimate, ci_low, ci_high, statistic (W), statistic_type, p, n_participants, method and
        status; only status when an arm has fewer than 2 changes or every change is the same.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> row = hodges_lehmann_row(frame, meta, "pain", 0.05)
    >>> row["estimate"], row["ci_low"], row["ci_high"], row["method"]
    (-2.0, -2.5, -1.5, 'Wilcoxon-Mann-Whitney, normal approximation')
    """
    ch = change_scores(frame, meta, key)
    a, b = ch["intervention"].to_numpy(), ch["control"].to_numpy()
    if len(a) < 2 or len(b) < 2:
        return {"status": "failed: fewer than 2 change scores in an arm"}
    if np.ptp(np.concatenate([a, b])) == 0:
        return {"status": "failed: every change score is the same (for an assay: all values below the LOD?)"}
    hl = hodges_lehmann(a, b, alpha)
    return {
        "estimate": hl["estimate"],
        "ci_low": hl["ci_low"],
        "ci_high": hl["ci_high"],
        "statistic": hl["W"],
        "statistic_type": "W",
        "p": hl["p"],
        "n_participants": len(a) + len(b),
        "method": f"Wilcoxon-Mann-Whitney, {hl['method']}",
        "status": "ok",
    }


def sensitivity_rows(
    frame: pd.DataFrame, meta: Trial, key: str, opts: AnalysisOptions, outliers: str = "winsorise", k: float = 3.0
) -> list[dict]:
    """Every sensitivity analysis of one outcome's intervention effect at the last visit.

    The primary estimand on all data and on complete cases, with outliers handled, under the other
    below-LOD rules and the censored model (when values are censored), then the mixed ANOVA and the
    Hodges-Lehmann rows. A failing analysis is a row with its status, never an exception.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.
    opts : AnalysisOptions
        How the estimands are fitted.
    outliers : {"winsorise", "exclude", "none"}
        Outlier handling of the outlier row ("none" leaves the row out).
    k : float
        Outlier threshold in robust SDs.

    Returns
    -------
    list of dict
        One row per analysis (keys among `COLUMNS`).

    Examples
    --------
    >>> from pnitrial.analyses.estimands import AnalysisOptions
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> rows = sensitivity_rows(frame, meta, "pain", AnalysisOptions())
    >>> [(r["analysis"], round(r["estimate"], 6), r["status"]) for r in rows[:2]]
    [('primary (all available data)', -2.0, 'ok'), ('complete cases', -2.0, 'ok')]
    >>> len(rows)
    5
    """
    return _fill([_plan(frame, meta, key, opts, outliers, k)], frame, meta, opts)


def _plan(
    frame: pd.DataFrame, meta: Trial, key: str, opts: AnalysisOptions, outliers: str, k: float
) -> list[dict | _Refit]:
    """One outcome's rows in order: finished rows, and the refits still to fit (`_fill`)."""
    outcome = meta.outcome(key)
    visit = meta.visits[-1]
    n_all = int(frame.loc[(frame["outcome"] == key) & frame["role"].isin(TRIAL_ROLES), "pid"].nunique())

    def row(analysis: str, values: dict | None, n: int | None = None, changed: int | None = None) -> dict:
        base = {"outcome": key, "family": outcome.family, "analysis": analysis, "visit": visit}
        return {**base, "n_participants": n, "n_changed": changed, **values}

    plan: list[dict | _Refit] = [_Refit(key, "primary (all available data)", frame, n_all, 0, opts)]
    cc = complete_cases(frame, meta, key)
    n_cc = int(cc.loc[(cc["outcome"] == key) & cc["role"].isin(TRIAL_ROLES), "pid"].nunique())
    plan.append(_Refit(key, "complete cases", cc, n_cc, n_all - n_cc, opts))
    if outliers != "none":
        label = f"outliers beyond {k:g} robust SD {'winsorised' if outliers == 'winsorise' else 'excluded'}"
        trimmed, failed = attempt(f"{key} sensitivity ({label})", handle_outliers, frame, meta, key, outliers, k)
        if failed is None:
            plan.append(_Refit(key, label, trimmed[0], n_all, trimmed[1], opts))
        else:
            plan.append(row(label, {"status": failed}, n_all))
    n_cens = int(frame.loc[frame["outcome"] == key, "censored"].sum())
    if n_cens:
        # substitution rows fit the substitution estimand (the censored model ignores the values)
        plain = opts.primary if opts.primary in ("clda", "lmm", "ancova") else "clda"
        for m in LOD_RULES:
            if m != meta.lod_method:
                alt = resubstitute(frame, key, m)
                plan.append(_Refit(key, f"below-LOD values as {LOD_LABELS[m]}", alt, n_all, n_cens, opts, plain))
        if not opts.censored:
            cens_opts = replace(opts, censored=True)
            plan.append(_Refit(key, "below-LOD values censored (ML)", frame, n_all, n_cens, cens_opts, CENSORED))
    for label, fn in (
        ("mixed ANOVA, complete cases", mixed_anova_row),
        ("Hodges-Lehmann shift of the changes", hodges_lehmann_row),
    ):
        values, failed = attempt(f"{key} sensitivity ({label})", fn, frame, meta, key, opts.alpha)
        plan.append(row(label, values if failed is None else {"status": failed}))
    return plan


def _fill(plans: list[list[dict | _Refit]], frame: pd.DataFrame, meta: Trial, opts: AnalysisOptions) -> list[dict]:
    """The plans' rows with every refit fitted: uncensored ones in one batch, the rest one at a time."""
    visit = meta.visits[-1]
    refits = [r for plan in plans for r in plan if isinstance(r, _Refit)]
    batched = iter(_refit_batched(refits, frame, meta, opts, visit))
    rows = []
    for plan in plans:
        for r in plan:
            if not isinstance(r, _Refit):
                rows.append(r)
                continue
            values = next(batched)
            if values is None:
                got, failed = attempt(f"{r.key} sensitivity ({r.analysis})", _refit_one, r, meta, visit)
                values = got if failed is None else {"status": failed}
            head = {"outcome": r.key, "family": meta.outcome(r.key).family, "analysis": r.analysis, "visit": visit}
            rows.append({**head, "n_participants": r.n, "n_changed": r.changed, **values})
    return rows


def sensitivity_table(
    frame: pd.DataFrame, meta: Trial, opts: AnalysisOptions, outliers: str = "winsorise", k: float = 3.0
) -> pd.DataFrame:
    """`sensitivity_rows` of every outcome of the trial, in one table.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    opts : AnalysisOptions
        How the estimands are fitted.
    outliers : {"winsorise", "exclude", "none"}
        Outlier handling of the outlier row.
    k : float
        Outlier threshold in robust SDs.

    Returns
    -------
    DataFrame
        The rows of every outcome, columns `COLUMNS`.

    Examples
    --------
    >>> from pnitrial.analyses.estimands import AnalysisOptions
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> table = sensitivity_table(frame, meta, AnalysisOptions(), outliers="none")
    >>> table["analysis"].str.split().str[0].tolist(), table["status"].unique().tolist()
    (['primary', 'complete', 'mixed', 'Hodges-Lehmann'], ['ok'])
    """
    plans = []
    for o in track(meta.outcomes, len(meta.outcomes), "sensitivity analyses"):
        got, failed = attempt(f"{o.key} sensitivity", _plan, frame, meta, o.key, opts, outliers, k)
        plans.append(got if failed is None else [{"outcome": o.key, "family": o.family, "status": failed}])
    return pd.DataFrame(_fill(plans, frame, meta, opts)).reindex(columns=COLUMNS)
