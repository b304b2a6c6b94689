"""Mediation of the intervention effect on a clinical change by a biomarker change.

X = arm (1 intervention, 0 control), M = change in the mediator, Y = change in the outcome (last
minus first visit, model scale), both adjusted for the baselines of M and Y. Paths by least
squares (Baron & Kenny 1986), the indirect effect a*b with a bias-corrected bootstrap interval
(pingouin.mediation_analysis; Preacher & Hayes 2008, Behav Res Methods 40:879), seeded per pair.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
import pingouin as pg

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
    a*b with a bias-corrected bootstrap interval (Preacher & Hayes 2008, Behav Res Methods 40:879).

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        res = pg.mediation_analysis(
            data=data, x="x", m="m", y="y", covar=["m0", "y0"], alpha=alpha, n_boot=n_boot, seed=seed
        )
        # the b path itself (mediator given arm and baselines), which the indirect effect uses
        b = pg.linear_regression(data[["x", "m", "m0", "y0"]], data["y"], alpha=alpha)
    lo, hi = (c for c in res.columns if c.startswith("CI"))
    res = res.rename(columns={"coef": "estimate", "pval": "p", lo: "ci_low", hi: "ci_high"})
    res["path"] = PATHS
    lo, hi = (c for c in b.columns if c.startswith("CI"))
    b = b.rename(columns={"coef": "estimate", "pval": "p", lo: "ci_low", hi: "ci_high"})
    b_row = b[b["names"] == "m"].assign(path=B_PATH)
    cols = ["path", "estimate", "se", "ci_low", "ci_high", "p"]
    return pd.concat([res.iloc[:1][cols], b_row[cols], res.iloc[1:][cols]], ignore_index=True)


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
