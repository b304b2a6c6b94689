"""Mediation of the intervention effect on a clinical change by a biomarker change.

X = arm (1 intervention, 0 control), M = change in the mediator, Y = change in the outcome (last
minus first visit, model scale), both adjusted for the baselines of M and Y. Paths by least
squares (Baron & Kenny 1986), the indirect effect a*b with a bias-corrected bootstrap interval
(Preacher & Hayes 2008, Behav Res Methods 40:879) over pingouin.mediation_analysis's resamples,
vectorised, seeded per pair.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from pnitrial.data.codebook import TRIAL_ROLES
from pnitrial.data.trial import Trial
from pnitrial.failures import attempt
from pnitrial.progress import track

COLUMNS = [
    "mediator",
    "outcome",
    "path",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p",
    "ci_method",
    "n_participants",
    "bootstrap",
    "seed",
    "p_fdr",
    "p_adjust_method",
    "status",
]
# pingouin's rows, in its order: M ~ X, Y ~ M (without X), Total, Direct, Indirect
PATHS = (
    "a (arm -> mediator)",
    "mediator -> outcome, arm not in the model",
    "c (total)",
    "c' (direct)",
    "a*b (indirect)",
)
INDIRECT = PATHS[-1]
B_PATH = "b (mediator -> outcome | arm)"


def pair_seed(seed: int, mediator: str, outcome: str) -> int:
    """A 32-bit seed per pair (pingouin takes a RandomState seed), independent of job order.

    Parameters
    ----------
    seed : int
        The analysis seed.
    mediator, outcome : str
        Outcome keys of the pair (their CRC-32 are mixed in).

    Returns
    -------
    int

    Examples
    --------
    >>> pair_seed(2024, "il6", "pain")
    1529989356
    """
    ss = np.random.SeedSequence([seed, zlib.crc32(mediator.encode()), zlib.crc32(outcome.encode())])
    return int(ss.generate_state(1)[0])


def mediation_data(frame: pd.DataFrame, meta: Trial, mediator: str, outcome: str) -> pd.DataFrame:
    """Per trial participant with both outcomes at the first and last visit: x, m, y, m0, y0.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    mediator, outcome : str
        Outcome keys of M and Y.

    Returns
    -------
    DataFrame
        x (1 intervention), m and y (changes, model scale), m0 and y0 (baselines), sorted by pid.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(il6, pain))
    >>> rng = np.random.default_rng(5)
    >>> n = 12; arm = np.arange(n) < 6
    >>> m0, y0 = rng.normal(1.0, 0.5, n), rng.normal(6.0, 1.0, n)
    >>> m1 = m0 - 0.6 * arm + rng.normal(0, 0.3, n)
    >>> y1 = y0 + 1.5 * (m1 - m0) + rng.normal(0, 0.5, n)
    >>> values = {("il6", 0): np.exp(m0), ("il6", 1): np.exp(m1), ("pain", 0): y0, ("pain", 1): y1}
    >>> frame = pd.concat([pd.DataFrame({"pid": np.arange(1, n + 1), "role": np.where(arm, "intervention", "control"),
    ...     "visit": ("pre", "post")[v], "visit_index": v, "outcome": k, "value": val})
    ...     for (k, v), val in values.items()], ignore_index=True)
    >>> data = mediation_data(frame, meta, "il6", "pain")
    >>> data.shape, data.loc[0].round(4).tolist()
    ((12, 5), [1.0, -0.4771, -1.2613, 0.599, 5.0417])
    """
    last = len(meta.visits) - 1
    cols = {}
    for name, key in (("m", mediator), ("y", outcome)):
        sub = frame[(frame["outcome"] == key) & frame["role"].isin(TRIAL_ROLES) & frame["visit_index"].isin([0, last])]
        v = meta.outcome(key).model_scale(sub["value"].astype(float))
        wide = sub.assign(v=v).pivot_table(index=["pid", "role"], columns="visit_index", values="v")
        if 0 not in wide or last not in wide:
            return pd.DataFrame(columns=["x", "m", "y", "m0", "y0"])
        cols[name] = wide[last] - wide[0]
        cols[f"{name}0"] = wide[0]
    data = pd.DataFrame(cols).dropna().reset_index()
    data["x"] = (data["role"] == "intervention").astype(float)
    return data.sort_values("pid", kind="stable")[["x", "m", "y", "m0", "y0"]].reset_index(drop=True)


def mediation(data: pd.DataFrame, n_boot: int, seed: int, alpha: float = 0.05) -> pd.DataFrame:
    """pingouin's five paths with covariates m0 and y0, and the b path itself.

    Paths by least squares (Baron & Kenny 1986, J Pers Soc Psychol 51:1173); the indirect effect
    a*b with a bias-corrected bootstrap interval (Preacher & Hayes 2008, Behav Res Methods 40:879)
    over pingouin's resamples, computed by `bootstrap_indirect` in one vectorised pass.

    Parameters
    ----------
    data : DataFrame
        Columns x, m, y, m0, y0, as from `mediation_data`.
    n_boot : int
        Bootstrap resamples.
    seed : int
        RandomState seed of the bootstrap.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    DataFrame
        Rows `PATHS` with the b path second; columns path, estimate, se, ci_low, ci_high, p.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> x = np.repeat([1.0, 0.0], 6); m0, y0 = rng.normal(1.0, 0.5, 12), rng.normal(6.0, 1.0, 12)
    >>> m = -0.6 * x + rng.normal(0, 0.3, 12)
    >>> data = pd.DataFrame({"x": x, "m": m, "y": 1.5 * m + rng.normal(0, 0.5, 12), "m0": m0, "y0": y0})
    >>> res = mediation(data, n_boot=200, seed=42)
    >>> res["path"].iloc[[0, 1, -1]].tolist()
    ['a (arm -> mediator)', 'b (mediator -> outcome | arm)', 'a*b (indirect)']
    >>> res["estimate"].round(4).tolist()
    [-0.5457, 1.0986, 0.9761, -0.4984, 0.1011, -0.5994]
    """
    cols = ["path", "estimate", "se", "ci_low", "ci_high", "p"]

    def fit(predictors: list[str], response: str, term: str, path: str) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            res = pg.linear_regression(data[predictors], data[response], alpha=alpha)
        lo, hi = (c for c in res.columns if c.startswith("CI"))
        res = res.rename(columns={"coef": "estimate", "pval": "p", lo: "ci_low", hi: "ci_high"})
        return res[res["names"] == term].assign(path=path)[cols]

    a = fit(["x", "m0", "y0"], "m", "x", PATHS[0])
    direct = fit(["x", "m", "m0", "y0"], "y", "x", PATHS[3])
    b = fit(["x", "m", "m0", "y0"], "y", "m", B_PATH)
    m_only = fit(["m", "m0", "y0"], "y", "m", PATHS[1])
    total = fit(["x", "m0", "y0"], "y", "x", PATHS[2])
    ab = float(a["estimate"].iloc[0] * b["estimate"].iloc[0])
    boot = bootstrap_indirect(data, n_boot, seed)
    lo, hi = bias_corrected_interval(boot, ab, alpha)
    se, p = boot.std(ddof=1), _boot_p(boot, ab)
    indirect = pd.DataFrame([{"path": INDIRECT, "estimate": ab, "se": se, "ci_low": lo, "ci_high": hi, "p": p}])
    return pd.concat([a, b, m_only, total, direct, indirect], ignore_index=True)[cols]


def bootstrap_indirect(data: pd.DataFrame, n_boot: int, seed: int) -> np.ndarray:
    """a*b in each of pingouin's resamples (``RandomState(seed).choice(n, (n_boot, n))``), vectorised.

    Each resample's cross-products of [1, x, m, m0, y0, y] are summed in resample order (no BLAS,
    so the bits are the same on every processor), and both least-squares fits solved from them.
    A resample whose design is singular (one arm only) is solved by minimum-norm least squares, as
    pingouin does. Resamples are drawn in blocks that keep the working set near 100 MB.

    Parameters
    ----------
    data : DataFrame
        Columns x, m, y, m0, y0.
    n_boot : int
        Resamples.
    seed : int
        RandomState seed.

    Returns
    -------
    ndarray, shape (n_boot,)
        The indirect effect in each resample.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> data = pd.DataFrame(rng.normal(size=(20, 5)), columns=["x", "m", "y", "m0", "y0"])
    >>> data["x"] = np.arange(20) % 2
    >>> bootstrap_indirect(data, 3, 7).round(4).tolist()
    [0.0022, -0.0157, 0.2148]
    """
    from pnitrial.models.intercept import rank_deficient
    from pnitrial.models.linalg import chol, chol_solve

    Z = np.column_stack([np.ones(len(data)), data[["x", "m", "m0", "y0", "y"]].to_numpy(dtype=float)])
    n = len(Z)
    outer = (Z[:, :, None] * Z[:, None, :]).reshape(n, -1)  # (n, 36)
    A, B = [0, 1, 3, 4], [0, 1, 2, 3, 4]  # m ~ 1 + x + m0 + y0 ; y ~ 1 + x + m + m0 + y0
    rng = np.random.RandomState(seed)
    block = max(1, 3_000_000 // max(n * outer.shape[1], 1))
    out = np.empty(n_boot)
    for start in range(0, n_boot, block):
        idx = rng.randint(0, n, size=(min(block, n_boot - start), n))  # pingouin's choice(), block by block
        G = np.add.reduce(outer[idx], axis=1).reshape(len(idx), 6, 6)  # summed along the resample, in order
        XtX_a, XtX_b = G[:, A][:, :, A], G[:, B][:, :, B]
        singular = rank_deficient(XtX_a) | rank_deficient(XtX_b)
        safe_a = np.where(singular[:, None, None], np.eye(4), XtX_a)
        safe_b = np.where(singular[:, None, None], np.eye(5), XtX_b)
        a = chol_solve(chol(safe_a), G[:, A, 2])[:, 1]
        b = chol_solve(chol(safe_b), G[:, B, 5])[:, 2]
        for k in np.flatnonzero(singular):
            rows = Z[idx[k]]
            a[k] = _min_norm(rows[:, A], rows[:, 2])[1]
            b[k] = _min_norm(rows[:, B], rows[:, 5])[2]
        out[start : start + len(idx)] = a * b
    return out


def _min_norm(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Minimum-norm least squares (pingouin's solution of a singular resample).

    A column that is zero throughout (x in a resample without the intervention arm) gets exactly
    0, not LAPACK's rounding of it, whose sign would otherwise differ between processors.
    """
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    return np.where(np.all(X == 0.0, axis=0), 0.0, coef)


def bias_corrected_interval(boot: np.ndarray, estimate: float, alpha: float = 0.05) -> tuple[float, float]:
    """Bias-corrected bootstrap percentile interval (Efron 1981, Can J Stat 9:139), as pingouin's.

    Examples
    --------
    >>> boot = np.linspace(-1.0, 3.0, 401)
    >>> [round(v, 4) for v in bias_corrected_interval(boot, 1.0)]
    [-0.9015, 2.8985]
    """
    z0 = stats.norm.ppf(np.mean(boot < estimate))
    lo, hi = stats.norm.cdf(2 * z0 + stats.norm.ppf([alpha / 2, 1 - alpha / 2])) * 100
    ci = np.percentile(boot, [lo, hi])
    return float(min(ci)), float(max(ci))


def _boot_p(boot: np.ndarray, estimate: float) -> float:
    """Two-sided p from the bootstrap signs (pingouin's, after R's mediation package)."""
    if estimate == 0:
        return 1.0
    return float(min(2 * min(np.sum(boot > 0), np.sum(boot < 0)) / len(boot), 1.0))


def mediation_table(
    frame: pd.DataFrame,
    meta: Trial,
    mediators: list[str],
    outcomes: list[str],
    n_boot: int,
    seed: int,
    alpha: float,
    method: str,
    min_n: int = 8,
) -> pd.DataFrame:
    """Every mediator x outcome pair; the indirect effects' p adjusted across the pairs.

    A pair with an outcome missing from the codebook, or fewer than `min_n` complete participants,
    or whose analysis fails, is one row with its status.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    mediators, outcomes : list of str
        Outcome keys; every pair of distinct keys is analysed.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Analysis seed (combined with the pair by `pair_seed`).
    alpha : float
        1 - confidence level of the intervals.
    method : str
        Multiplicity method for the indirect effects (inference.multiplicity.adjust).
    min_n : int
        Fewest complete participants analysed.

    Returns
    -------
    DataFrame
        Six path rows per analysed pair, columns `COLUMNS`.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(il6, pain))
    >>> rng = np.random.default_rng(5)
    >>> n = 12; arm = np.arange(n) < 6
    >>> m0, y0 = rng.normal(1.0, 0.5, n), rng.normal(6.0, 1.0, n)
    >>> m1 = m0 - 0.6 * arm + rng.normal(0, 0.3, n)
    >>> y1 = y0 + 1.5 * (m1 - m0) + rng.normal(0, 0.5, n)
    >>> values = {("il6", 0): np.exp(m0), ("il6", 1): np.exp(m1), ("pain", 0): y0, ("pain", 1): y1}
    >>> frame = pd.concat([pd.DataFrame({"pid": np.arange(1, n + 1), "role": np.where(arm, "intervention", "control"),
    ...     "visit": ("pre", "post")[v], "visit_index": v, "outcome": k, "value": val})
    ...     for (k, v), val in values.items()], ignore_index=True)
    >>> table = mediation_table(frame, meta, ["il6"], ["pain", "bdi"], 200, 2024, 0.05, "bh")
    >>> indirect = table[table["path"] == INDIRECT].iloc[0]
    >>> round(float(indirect["estimate"]), 4), indirect["ci_method"], indirect["p_adjust_method"]
    (-0.5994, 'bias-corrected bootstrap', 'bh')
    >>> table["status"].iloc[-1]
    'not in the codebook: bdi'
    """
    from pnitrial.inference.multiplicity import adjust

    known = {o.key for o in meta.outcomes}
    rows = []
    pairs = [(mk, yk) for mk in mediators for yk in outcomes if mk != yk]
    for mk, yk in track(pairs, len(pairs), f"mediation ({n_boot} bootstrap samples per pair)", "pairs"):
        base = {"mediator": mk, "outcome": yk, "bootstrap": n_boot}
        missing = [k for k in (mk, yk) if k not in known]
        if missing:
            rows.append({**base, "status": f"not in the codebook: {', '.join(missing)}"})
            continue
        data = mediation_data(frame, meta, mk, yk)
        if len(data) < min_n or data["x"].nunique() < 2:
            rows.append({**base, "n_participants": len(data), "status": f"too few complete participants (< {min_n})"})
            continue
        s = pair_seed(seed, mk, yk)
        res, failed = attempt(f"mediation {mk} -> {yk}", mediation, data, n_boot, s, alpha)
        if failed is not None:
            rows.append({**base, "n_participants": len(data), "seed": s, "status": failed})
            continue
        for r in res.itertuples(index=False):
            path = r.path
            rows.append(
                {
                    **base,
                    "path": path,
                    "estimate": r.estimate,
                    "se": r.se,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "p": r.p,
                    "ci_method": "bias-corrected bootstrap" if path == INDIRECT else "t (least squares)",
                    "n_participants": len(data),
                    "seed": s,
                    "status": "ok",
                }
            )
    out = pd.DataFrame(rows, columns=COLUMNS)
    out[["n_participants", "seed"]] = out[["n_participants", "seed"]].astype("Int64")
    out["p_adjust_method"] = out["p_adjust_method"].astype(object)
    ind = out.index[out["path"] == INDIRECT]
    out.loc[ind, "p_fdr"] = adjust(out.loc[ind, "p"].to_numpy(dtype=float), method)
    out.loc[ind, "p_adjust_method"] = method
    return out
