"""pnitrial's numbers in the tidy layout of tests/reference/lmer_reference.R, and the comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.contrasts import METHODS, Inference
from pnitrial.models.design import build_trial_model, trial_contrasts
from pnitrial.models.engine import fit_lmm

REFERENCE = Path(__file__).parent / "reference" / "expected"

# Tolerances promised in the README: estimates 1e-6 rel, SE 1e-5 rel, df 1e-3 rel, p 1e-6 abs.
TOLERANCE = {
    "coef": ("rel", 1e-6),
    "coef_se": ("rel", 1e-5),
    "var_participant": ("rel", 1e-6),
    "var_slope": ("rel", 1e-6),
    "cov_intercept_slope": ("rel", 1e-6),
    "var_residual": ("rel", 1e-6),
    "reml_criterion": ("rel", 1e-8),
    "theta": ("rel", 1e-5),
    "emm": ("rel", 1e-6),
    "emm_se": ("rel", 1e-5),
    "emm_df": ("rel", 1e-3),
    "emm_lower": ("rel", 1e-5),
    "emm_upper": ("rel", 1e-5),
    "clda_emm": ("rel", 1e-6),
    "clda_emm_se": ("rel", 1e-5),
    "clda_emm_df": ("rel", 1e-3),
    "clda_emm_lower": ("rel", 1e-5),
    "clda_emm_upper": ("rel", 1e-5),
    "estimate": ("rel", 1e-6),
    "se": ("rel", 1e-5),
    "df": ("rel", 1e-3),
    "statistic": ("rel", 1e-5),
    "p": ("abs", 1e-6),
    "ci_low": ("rel", 1e-5),
    "ci_high": ("rel", 1e-5),
    "F": ("rel", 1e-5),
    "F_ndf": ("abs", 0),
    "F_ddf": ("rel", 1e-3),
    "F_p": ("abs", 1e-6),
    "clda_var_participant": ("rel", 1e-6),
    "clda_var_residual": ("rel", 1e-6),
    "clda_reml_criterion": ("rel", 1e-8),
    "singular": ("abs", 0),
    "n_obs": ("abs", 0),
}


# interval bounds whose tolerance also scales with the SE of the same estimate
SE_OF = {
    "ci_low": "se",
    "ci_high": "se",
    "emm_lower": "emm_se",
    "emm_upper": "emm_se",
    "clda_emm_lower": "clda_emm_se",
    "clda_emm_upper": "clda_emm_se",
}


def pnitrial_values(codebook: Path, random_slope: bool = False) -> pd.DataFrame:
    cb = load_codebook(codebook)
    frame, meta = build_long_frame(cb)
    rows = []

    def add(outcome, quantity, name, method, value):
        rows.append((outcome, quantity, name, method, float(value)))

    for o in meta.outcomes:
        key = o.key
        tm = build_trial_model(frame, meta, o, random_slope=random_slope)
        fit = fit_lmm(tm.data)
        for name, b, s in zip(tm.data.fixed_names, fit.beta, np.sqrt(np.diag(fit.vcov)), strict=True):
            add(key, "coef", name, "", b)
            add(key, "coef_se", name, "", s)
        cov = fit.random_cov
        add(key, "var_participant", "", "", cov[0, 0])
        if random_slope:
            add(key, "var_slope", "", "", cov[1, 1])
            add(key, "cov_intercept_slope", "", "", cov[0, 1])
        add(key, "var_residual", "", "", fit.sigma**2)
        add(key, "reml_criterion", "", "", fit.criterion)
        add(key, "singular", "", "", fit.singular)
        add(key, "n_obs", "", "", tm.data.n)
        for i, t in enumerate(fit.theta, start=1):
            add(key, "theta", str(i), "", t)
        arm_label = {"control": meta.arms["control"], "intervention": meta.arms["intervention"]}
        for method in METHODS:
            inf = Inference(fit, method)
            for (role, visit), L in tm.grid.rows.items():
                e = inf.estimate(L)
                nm = f"{arm_label[role]}|{visit}"
                add(key, "emm", nm, method, e.estimate)
                add(key, "emm_se", nm, method, e.se)
                add(key, "emm_df", nm, method, e.df)
                add(key, "emm_lower", nm, method, e.ci_low)
                add(key, "emm_upper", nm, method, e.ci_high)
            for contrast, _visit, L in trial_contrasts(tm.grid):
                e = inf.estimate(L)
                for q in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high"):
                    add(key, q, contrast, method, getattr(e, q))
        for method in METHODS:
            res = analyse_outcome(
                frame, meta, key, AnalysisOptions(ddf=method, random_slope=random_slope, covariance="random-intercept")
            )
            for e in res.effects:
                if e["estimand"] in ("clda", "ancova") and e["scale"] == "model":
                    nm = f"{e['estimand']}|{e['contrast']}"
                    label = "ols" if e["estimand"] == "ancova" else method
                    for q in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high"):
                        add(key, q, nm, label, np.inf if e[q] is None else e[q])
            for e in res.emmeans:
                if e["estimand"] == "clda":
                    nm = f"{e['arm']}|{e['visit']}"
                    add(key, "clda_emm", nm, method, e["emmean"])
                    add(key, "clda_emm_se", nm, method, e["se"])
                    add(key, "clda_emm_df", nm, method, np.inf if e["df"] is None else e["df"])
                    add(key, "clda_emm_lower", nm, method, e["ci_low"])
                    add(key, "clda_emm_upper", nm, method, e["ci_high"])
            if method == "kenward-roger":
                clda = next(f for f in res.fits if f["estimand"] == "clda")
                add(key, "clda_var_participant", "", "", clda["var_participant"])
                add(key, "clda_var_residual", "", "", clda["var_residual"])
                add(key, "clda_reml_criterion", "", "", clda["reml_criterion"])
            if method != "asymptotic":
                a = res.anova[0]
                add(key, "F", "arm:visit", method, a["F"])
                add(key, "F_ndf", "arm:visit", method, a["ndf"])
                add(key, "F_ddf", "arm:visit", method, a["ddf"])
                add(key, "F_p", "arm:visit", method, a["p"])
    return pd.DataFrame(rows, columns=["outcome", "quantity", "name", "method", "value"])


def compare(ours: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """Join on (outcome, quantity, name, method); return the rows outside tolerance."""
    ref = ref.fillna({"name": "", "method": ""})
    ref["value"] = ref["value"].replace({"Inf": np.inf}).astype(float)
    ours = ours.drop_duplicates(["outcome", "quantity", "name", "method"])
    m = ref.merge(ours, on=["outcome", "quantity", "name", "method"], how="left", suffixes=("_r", "_py"))
    missing = m[m["value_py"].isna()]
    assert missing.empty, f"pnitrial lacks {len(missing)} reference values, e.g. {missing.head(3).to_dict('records')}"
    bad = []
    np.seterr(invalid="ignore")
    key = ["outcome", "name", "method"]
    for q, (kind, tol) in TOLERANCE.items():
        sub = m[m["quantity"] == q]
        r, p = sub["value_r"].to_numpy(), sub["value_py"].to_numpy()
        both_inf = np.isinf(r) & np.isinf(p)
        if kind == "rel":
            # an absolute floor of 1e-8 for values that are themselves near zero; an interval bound
            # near zero is compared on the scale of its SE (a bound of -0.0027 with SE 5 is no 1e-5 claim)
            floor = np.full(len(sub), 1e-8)
            if q in SE_OF:
                se = m[m["quantity"] == SE_OF[q]].set_index(key)["value_r"]
                floor = np.maximum(floor, tol * sub.join(se.rename("se_r"), on=key)["se_r"].abs().to_numpy())
            ok = both_inf | (np.abs(p - r) <= np.maximum(tol * np.abs(r), floor))
        else:
            ok = both_inf | (np.abs(p - r) <= tol)
        bad.append(sub[~ok])
    return pd.concat(bad)
