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
    """A 32-bit seed per pair (pingouin takes a RandomState seed), independent of job order."""
    ss = np.random.SeedSequence([seed, zlib.crc32(mediator.encode()), zlib.crc32(outcome.encode())])
    return int(ss.generate_state(1)[0])


def mediation_data(frame: pd.DataFrame, meta: Trial, mediator: str, outcome: str) -> pd.DataFrame:
    """Per trial participant with both outcomes at the first and last visit: x, m, y, m0, y0."""
    last = len(meta.visits) - 1
    cols = {}
    for name, key in (("m", mediator), ("y", outcome)):
        sub = frame[(frame["outcome"] == key) & frame["role"].isin(TRIAL_ROLES) & frame["visit_index"].isin([0, last])]
        v = np.log(sub["value"]) if meta.outcome(key).is_log else sub["value"].astype(float)
        wide = sub.assign(v=v).pivot_table(index=["pid", "role"], columns="visit_index", values="v")
        if 0 not in wide or last not in wide:
            return pd.DataFrame(columns=["x", "m", "y", "m0", "y0"])
        cols[name] = wide[last] - wide[0]
        cols[f"{name}0"] = wide[0]
    data = pd.DataFrame(cols).dropna().reset_index()
    data["x"] = (data["role"] == "intervention").astype(float)
    return data.sort_values("pid", kind="stable")[["x", "m", "y", "m0", "y0"]].reset_index(drop=True)


def mediation(data: pd.DataFrame, n_boot: int, seed: int, alpha: float = 0.05) -> pd.DataFrame:
    """pingouin's five paths with covariates m0 and y0."""
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
    """Every mediator x outcome pair; the indirect effects' p adjusted across the pairs."""
    from pnitrial.inference.multiplicity import adjust

    known = {o.key for o in meta.outcomes}
    rows = []
    for mk in mediators:
        for yk in outcomes:
            if mk == yk:
                continue
            base = {"mediator": mk, "outcome": yk, "bootstrap": n_boot}
            missing = [k for k in (mk, yk) if k not in known]
            if missing:
                rows.append({**base, "status": f"not in the codebook: {', '.join(missing)}"})
                continue
            data = mediation_data(frame, meta, mk, yk)
            if len(data) < min_n or data["x"].nunique() < 2:
                rows.append(
                    {**base, "n_participants": len(data), "status": f"too few complete participants (< {min_n})"}
                )
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
