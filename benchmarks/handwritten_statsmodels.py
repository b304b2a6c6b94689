"""Hand-written re-analysis of a two-arm trial with statsmodels and pingouin, without pnitrial.

The Python counterpart of benchmarks/handwritten.R: what an analyst writes by hand today for every
outcome of a codebook, so that benchmarks can time it against the pipeline.

- lmm: ``smf.mixedlm("y ~ arm * visit", groups=participant, re_formula="1")`` fitted by REML; the
  arm x visit interaction and the intervention - control difference at the last visit (Wald z,
  statsmodels has no Kenward-Roger df).
- clda: ``y ~ visit + arm x later visit``, no arm effect at baseline, same random intercept.
- ancova: ``smf.ols("y_post ~ arm + y_pre")`` at the last visit.
- mixed ANOVA: ``pg.mixed_anova`` (visit within, arm between), p of the interaction.
- permutation test of the cLDA effect: arm labels re-randomised across participants (arm sizes
  kept), MixedLM refitted each time, p = (1 + #{|t_b| >= |t_obs|}) / (B + 1).

Cells below the limit of detection ('<4.68') are taken as half the limit, empty cells as missing,
log-transformed outcomes are logged; the healthy arm is dropped.

Usage: python benchmarks/handwritten_statsmodels.py <codebook.yaml> <n_permutations> <seed>
Prints one line at the end: TIMING total_seconds=<x> permutation_seconds=<y> outcomes=<k>
(elapsed seconds from after the imports; the permutation part is included in the total)
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import statsmodels.formula.api as smf
import yaml
from statsmodels.tools.sm_exceptions import ConvergenceWarning

warnings.simplefilter("ignore", ConvergenceWarning)
warnings.filterwarnings("ignore", message=".*(singular|boundary|Hessian|converge).*")


def to_number(s: pd.Series) -> pd.Series:
    """'<x' -> x / 2, anything else that is not a number -> NaN."""
    s = s.astype("string").str.strip()
    cens = s.str.startswith("<").fillna(False)
    x = pd.to_numeric(s.str.lstrip("<"), errors="coerce").astype(float)
    return x.where(~cens, x / 2)


def wald(fit, term: str) -> tuple[float, float, float]:
    """Estimate, SE and p of one coefficient."""
    return float(fit.params[term]), float(fit.bse[term]), float(fit.pvalues[term])


def main(codebook: str, n_perm: int, seed: int) -> None:
    t_start = time.perf_counter()
    cb = yaml.safe_load(Path(codebook).read_text())
    cols, arms, visits = cb["columns"], cb["arms"], list(cb["visits"])
    raw = pd.read_csv(Path(codebook).parent / cb["table"], dtype=str, keep_default_na=False, na_values=[""])
    d = raw[raw[cols["arm"]].isin([arms["intervention"], arms["control"]])].copy()  # randomised arms only
    d["participant"] = d[cols["participant"]]
    d["arm"] = pd.Categorical(d[cols["arm"]], categories=[arms["control"], arms["intervention"]])
    d["visit"] = pd.Categorical(d[cols["visit"]], categories=visits)  # first visit is baseline
    later = visits[1:]
    tx = [f"tx_{i}" for i in range(1, len(visits))]  # cLDA arm terms, one per later visit
    for name, v in zip(tx, later, strict=True):
        d[name] = ((d["arm"] == arms["intervention"]) & (d["visit"] == v)).astype(float)
    inter = f"arm[T.{arms['intervention']}]:visit[T.{visits[-1]}]"
    arm_term = f"arm[T.{arms['intervention']}]"
    clda_formula = "y ~ visit + " + " + ".join(tx)

    rng = np.random.default_rng(seed)
    rows, perm_seconds = [], 0.0
    for key, o in cb["outcomes"].items():
        d["y"] = to_number(d[key])
        if o.get("transform") == "log":
            d["y"] = np.log(d["y"])
        dd = d[d["y"].notna()].reset_index(drop=True)

        # lmm: arm x visit, random intercept, REML
        m_lmm = smf.mixedlm("y ~ arm * visit", dd, groups=dd["participant"], re_formula="1").fit(reml=True)
        lmm_est, lmm_se, lmm_p = wald(m_lmm, inter)
        diff_last = m_lmm.params[arm_term] + m_lmm.params[inter]  # intervention - control at the last visit

        # clda: arm enters at later visits only
        m_clda = smf.mixedlm(clda_formula, dd, groups=dd["participant"], re_formula="1").fit(reml=True)
        clda_est, clda_se, clda_p = wald(m_clda, tx[-1])

        # ancova at the last visit
        w = dd.pivot_table(index=["participant", "arm"], columns="visit", values="y", observed=True)
        w = w.rename(columns={visits[0]: "y_pre", visits[-1]: "y_post"}).reset_index()
        anc = smf.ols("y_post ~ arm + y_pre", w).fit()
        anc_est, _, anc_p = wald(anc, arm_term)

        # mixed ANOVA (complete cases), interaction p
        aov = pg.mixed_anova(
            data=dd.astype({"arm": str, "visit": str}), dv="y", within="visit", between="arm", subject="participant"
        )
        aov_p = float(aov.loc[aov["Source"] == "Interaction", "p_unc"].iloc[0])

        # permutation test of the cLDA effect
        t0 = time.perf_counter()
        t_obs = clda_est / clda_se
        arm_of = dd.groupby("participant", sort=True)["arm"].first()
        t_b = np.empty(n_perm)
        for b in range(n_perm):
            arm_b = pd.Series(rng.permutation(arm_of.to_numpy()), index=arm_of.index)  # keeps the arm sizes
            is_i = dd["participant"].map(arm_b).to_numpy() == arms["intervention"]
            db = dd.copy()
            for name, v in zip(tx, later, strict=True):
                db[name] = (is_i & (db["visit"] == v).to_numpy()).astype(float)
            fb = smf.mixedlm(clda_formula, db, groups=db["participant"], re_formula="1").fit(reml=True)
            t_b[b] = fb.params[tx[-1]] / fb.bse[tx[-1]]
        p_perm = (1 + np.sum(np.abs(t_b) >= abs(t_obs))) / (n_perm + 1)
        perm_seconds += time.perf_counter() - t0

        rows.append(
            {
                "outcome": key,
                "n": len(dd),
                "lmm_est": lmm_est,
                "lmm_se": lmm_se,
                "lmm_p": lmm_p,
                "lmm_diff_last": diff_last,
                "clda_est": clda_est,
                "clda_p": clda_p,
                "ancova_est": anc_est,
                "ancova_p": anc_p,
                "mixed_anova_p": aov_p,
                "p_perm": p_perm,
            }
        )

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(pd.DataFrame(rows).round(4).to_string(index=False))
    total = time.perf_counter() - t_start
    print(f"TIMING total_seconds={total:.3f} permutation_seconds={perm_seconds:.3f} outcomes={len(rows)}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python benchmarks/handwritten_statsmodels.py <codebook.yaml> <n_permutations> <seed>")
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
