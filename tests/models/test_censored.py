"""Censored (Tobit) mixed model: lme4's ML fit when nothing is censored, brute-force quadrature otherwise."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE
from scipy import integrate, stats

from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.multiplicity import adjust
from pnitrial.models.censored import CensoredData, fit_censored, loglik_and_gradient
from pnitrial.models.design import build_clda_model, trial_rows
from pnitrial.models.engine import ModelData

REF = pd.read_csv(REFERENCE / "censored.csv", keep_default_na=False, na_values=["NA"])


@pytest.fixture(scope="module")
def demo():
    return build_long_frame(load_codebook(DEMO / "dataset.yaml"))


def _design(frame, meta, key):
    o = meta.outcome(key)
    d = build_clda_model(frame, meta, o).data
    rows = trial_rows(frame, key, meta.covariates)
    cens = rows["censored"].to_numpy().astype(bool)
    lod = rows["lod"].to_numpy(dtype=float)
    limit = np.where(cens, np.log(np.where(cens, lod, 1.0)) if o.is_log else lod, 0.0)
    return d, cens, limit


@pytest.mark.parametrize("key", ["oxytocin", "tnfa", "bdi"])
def test_nothing_censored_is_lme4s_ml_fit(demo, key):
    d, cens, limit = _design(*demo, key)
    fit = fit_censored(d, np.zeros(d.n, bool), limit)
    ref = REF[REF["outcome"] == key]
    coef = ref[ref["quantity"] == "coef"]["value"].to_numpy()
    se = ref[ref["quantity"] == "coef_se"]["value"].to_numpy()
    np.testing.assert_allclose(fit.beta, coef, rtol=1e-6, atol=1e-9)
    val = dict(zip(ref["quantity"], ref["value"], strict=False))
    assert fit.sigma_u == pytest.approx(val["sigma_participant"], rel=1e-6)
    assert fit.sigma == pytest.approx(val["sigma_residual"], rel=1e-6)
    assert fit.loglik == pytest.approx(val["loglik"], abs=1e-7)
    # lme4's vcov holds the variance components fixed; the reported covariance inverts the observed
    # information of all parameters, which differs only through the small beta-variance cross terms
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov_given_variances)), se, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), se, rtol=1e-2)
    assert fit.converged and not fit.singular and fit.n_censored == 0


def _small_case(seed: int, m: int = 4, per: int = 3, frac: float = 0.35):
    rng = np.random.default_rng(seed)
    n = m * per
    X = np.column_stack([np.ones(n), rng.normal(size=n), np.tile(np.arange(per), m)])
    group = np.repeat(np.arange(m), per)
    y = X @ np.array([0.5, -0.4, 0.3]) + rng.normal(0, 0.9, m)[group] + rng.normal(0, 0.6, n)
    c = np.quantile(y, frac)
    cens = y < c
    return ModelData(X, np.ones((n, 1)), np.where(cens, c, y), group, ("a", "b", "c")), cens, np.full(n, c)


def _brute_loglik(d: ModelData, cens: np.ndarray, limit: np.ndarray, psi: np.ndarray) -> float:
    """Each participant's integral over the random intercept by adaptive scipy quadrature."""
    p = d.p
    beta, su, s = psi[:p], math.exp(psi[p]), math.exp(psi[p + 1])
    y = np.where(cens, limit, d.y)
    total = 0.0
    for g in np.unique(d.group):
        r = d.group == g

        def integrand(u, r=r):
            mu = d.X[r] @ beta + u
            dens = np.where(cens[r], stats.norm.cdf((y[r] - mu) / s), stats.norm.pdf((y[r] - mu) / s) / s)
            return float(np.prod(dens) * stats.norm.pdf(u / su) / su)

        total += math.log(integrate.quad(integrand, -np.inf, np.inf, epsabs=0, epsrel=1e-13, limit=200)[0])
    return total


def _brute_gradient(d, cens, limit, psi, h=1e-5):
    return np.array(
        [
            (_brute_loglik(d, cens, limit, psi + h * e) - _brute_loglik(d, cens, limit, psi - h * e)) / (2 * h)
            for e in np.eye(len(psi))
        ]
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_likelihood_and_gradient_equal_brute_force_quadrature(seed):
    d, cens, limit = _small_case(seed)
    assert 0 < cens.sum() < d.n
    cd = CensoredData.from_model(d, cens, limit)
    psi = np.r_[0.3, -0.2, 0.1, math.log(0.7), math.log(0.5)]
    ll, grad = loglik_and_gradient(cd, psi)
    assert ll == pytest.approx(_brute_loglik(d, cens, limit, psi), abs=1e-9)
    h = 1e-5
    num = [
        (_brute_loglik(d, cens, limit, psi + h * e) - _brute_loglik(d, cens, limit, psi - h * e)) / (2 * h)
        for e in np.eye(5)
    ]
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-6)


def test_the_fit_maximises_the_exact_likelihood():
    d, cens, limit = _small_case(4, m=8, per=3)
    fit = fit_censored(d, cens, limit)
    psi = np.r_[fit.beta, math.log(fit.sigma_u), math.log(fit.sigma)]
    h = 1e-5
    num = [
        (_brute_loglik(d, cens, limit, psi + h * e) - _brute_loglik(d, cens, limit, psi - h * e)) / (2 * h)
        for e in np.eye(5)
    ]
    assert np.max(np.abs(num)) < 1e-5
    assert fit.loglik == pytest.approx(_brute_loglik(d, cens, limit, psi), abs=1e-9)
    assert fit.converged and fit.n_censored == int(cens.sum())


def test_quadrature_has_converged_on_the_demo(demo):
    d, cens, limit = _design(*demo, "oxytocin")
    assert cens.sum() == 3
    cd = CensoredData.from_model(d, cens, limit)
    psi = np.r_[2.4, 0.07, 0.006, -0.02, 0.25, math.log(0.6), math.log(0.2)]
    assert loglik_and_gradient(cd, psi)[0] == pytest.approx(loglik_and_gradient(cd, psi, q=100)[0], abs=1e-9)


def test_boundary_fit_is_flagged():
    rng = np.random.default_rng(5)
    m, per = 30, 2
    n = m * per
    X = np.column_stack([np.ones(n), np.tile([0.0, 1.0], m)])
    y = X @ np.array([1.0, 0.5]) + rng.normal(0, 1.0, n)  # no participant effect at all
    y = y - np.repeat(y.reshape(m, per).mean(axis=1), per) + np.repeat(np.linspace(-0.01, 0.01, m), per) + 1
    cens = y < np.quantile(y, 0.2)
    d = ModelData(X, np.ones((n, 1)), y, np.repeat(np.arange(m), per), ("a", "b"))
    fit = fit_censored(d, cens, np.full(n, np.quantile(y, 0.2)))
    assert fit.singular and any("boundary" in w for w in fit.warnings)
    assert np.all(np.isfinite(fit.vcov))


def test_analysis_makes_the_censored_clda_primary_where_values_are_censored(demo):
    from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
    from pnitrial.report.tables import adjust_effects

    frame, meta = demo
    opts = AnalysisOptions(censored=True)
    oxy = analyse_outcome(frame, meta, "oxytocin", opts)
    bdi = analyse_outcome(frame, meta, "bdi", opts)
    prim = [e for e in oxy.effects if e["primary"]]
    assert {e["estimand"] for e in prim} == {"clda_censored"}
    assert not any(e["estimand"] == "clda_censored" for e in bdi.effects)
    assert {e["estimand"] for e in bdi.effects if e["primary"]} == {"clda"}
    d, cens, limit = _design(frame, meta, "oxytocin")
    fit = fit_censored(d, cens, limit)
    row = next(e for e in prim if e["scale"] == "model")
    se = math.sqrt(fit.vcov[-1, -1])
    assert row["estimate"] == pytest.approx(fit.beta[-1], rel=1e-10) and row["se"] == pytest.approx(se, rel=1e-10)
    assert row["statistic_type"] == "z" and row["ddf_method"] == "asymptotic (censored ML)"
    assert row["ci_low"] == pytest.approx(fit.beta[-1] - stats.norm.ppf(0.975) * se)
    assert row["p"] == pytest.approx(2 * stats.norm.sf(abs(fit.beta[-1] / se)))
    ratio = next(e for e in prim if e["scale"] == "ratio")
    assert ratio["estimate"] == pytest.approx(math.exp(fit.beta[-1]))
    fits = {f["estimand"]: f for f in oxy.fits}
    assert fits["clda_censored"]["n_censored"] == 3 and fits["clda_censored"]["ml_deviance"] == pytest.approx(
        -2 * fit.loglik
    )
    # the primary effects of a family are adjusted together, whatever estimand is primary for each
    il6 = analyse_outcome(frame, meta, "il6", opts)
    table = adjust_effects(pd.DataFrame(oxy.effects + il6.effects), "bh")
    p = table[table["primary"] & (table["scale"] == "model")]
    assert list(p["estimand"]) == ["clda_censored", "clda"]
    np.testing.assert_allclose(p["p_fdr"], adjust(p["p"].to_numpy(), "bh"), rtol=1e-12)


def test_substitution_only_runs_report_the_censored_fit_as_a_sensitivity_row(demo):
    from pnitrial.analyses.estimands import AnalysisOptions
    from pnitrial.analyses.sensitivity import sensitivity_rows

    frame, meta = demo
    rows = sensitivity_rows(frame, meta, "oxytocin", AnalysisOptions(), "none")
    names = [r["analysis"] for r in rows]
    assert "below-LOD values censored (ML)" in names and names[0] == "primary (all available data)"
    d, cens, limit = _design(frame, meta, "oxytocin")
    censored_row = rows[names.index("below-LOD values censored (ML)")]
    assert censored_row["estimate"] == pytest.approx(fit_censored(d, cens, limit).beta[-1], rel=1e-10)
    with_censored = sensitivity_rows(
        frame, dataclasses.replace(meta, lod_method="censored"), "oxytocin", AnalysisOptions(censored=True), "none"
    )
    by_name = {r["analysis"]: r for r in with_censored}
    assert by_name["primary (all available data)"]["estimand"] == "clda_censored"
    assert by_name["below-LOD values as LOD/sqrt(2)"]["estimate"] == pytest.approx(rows[0]["estimate"], rel=1e-12)
