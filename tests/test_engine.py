"""The REML engine against a dense closed form, statsmodels, and lme4's refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnitrial.engine import ModelData, deviance, fit_lmm, sufficient_stats, theta_to_lambda


def random_design(seed: int, m: int = 12, visits: int = 3, q: int = 1, sd_u: float = 1.0) -> ModelData:
    rng = np.random.default_rng(seed)
    n_i = rng.integers(1, visits + 1, size=m)
    n_i[:2] = visits  # at least two complete participants
    group = np.repeat(np.arange(m), n_i)
    time = np.concatenate([np.sort(rng.choice(visits, k, replace=False)) for k in n_i]).astype(float)
    arm = np.repeat(rng.permutation(np.arange(m) % 2), n_i).astype(float)  # both arms present
    X = np.column_stack([np.ones(len(group)), arm, time, arm * time, rng.normal(size=len(group))])
    Z = np.ones((len(group), 1)) if q == 1 else np.column_stack([np.ones(len(group)), time])
    y = X @ np.array([3.0, 0.5, -0.2, 0.4, 0.1]) + rng.normal(0, sd_u, m)[group] + rng.normal(size=len(group))
    names = ("(Intercept)", "arm", "time", "arm:time", "x")
    return ModelData(X=X, Z=Z, y=y, group=group, fixed_names=names)


def dense_reml_deviance(theta: np.ndarray, d: ModelData) -> float:
    """-2 REML log-likelihood with sigma profiled, from the full n x n covariance."""
    lam = theta_to_lambda(theta, d.q)
    Zfull = np.zeros((d.n, d.m * d.q))
    for i, g in enumerate(d.group):
        Zfull[i, g * d.q : (g + 1) * d.q] = d.Z[i]
    V = np.eye(d.n) + Zfull @ np.kron(np.eye(d.m), lam @ lam.T) @ Zfull.T
    Vi = np.linalg.inv(V)
    xtvx = d.X.T @ Vi @ d.X
    beta = np.linalg.solve(xtvx, d.X.T @ Vi @ d.y)
    r = d.y - d.X @ beta
    dof = d.n - d.p
    s2 = r @ Vi @ r / dof
    return np.linalg.slogdet(V)[1] + np.linalg.slogdet(xtvx)[1] + dof * (1 + np.log(2 * np.pi * s2))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.floats(0.0, 5.0))
def test_profiled_deviance_equals_dense_closed_form(seed, t):
    d = random_design(seed)
    assert deviance(np.array([t]), sufficient_stats(d)) == pytest.approx(
        dense_reml_deviance(np.array([t]), d), rel=1e-10
    )


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.lists(st.floats(-2, 2), min_size=3, max_size=3))
def test_random_slope_deviance_equals_dense_closed_form(seed, t):
    d = random_design(seed, m=15, visits=4, q=2)
    theta = np.array([abs(t[0]), t[1], abs(t[2])])
    assert deviance(theta, sufficient_stats(d)) == pytest.approx(dense_reml_deviance(theta, d), rel=1e-10)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_fit_is_a_minimum_of_the_dense_criterion(seed):
    d = random_design(seed, m=20)
    fit = fit_lmm(d)
    f0 = dense_reml_deviance(fit.theta, d)
    for step in (1e-3, -1e-3):
        t = fit.theta + step
        if t[0] >= 0:
            assert dense_reml_deviance(t, d) >= f0 - 1e-9


def test_agrees_with_statsmodels_mixedlm():
    import pandas as pd
    import statsmodels.api as sm

    d = random_design(3, m=40)
    fit = fit_lmm(d)
    df = pd.DataFrame(d.X[:, 1:], columns=["arm", "time", "armtime", "x"]).assign(y=d.y, g=d.group)
    sm_fit = sm.MixedLM.from_formula("y ~ arm + time + armtime + x", groups="g", data=df).fit(reml=True)
    # statsmodels stops ~1e-5 short of the optimum: compare loosely, and our criterion is no worse
    np.testing.assert_allclose(fit.beta, sm_fit.fe_params.to_numpy(), rtol=1e-4, atol=1e-4)
    assert fit.sigma**2 == pytest.approx(sm_fit.scale, rel=1e-3)
    assert fit.random_cov[0, 0] == pytest.approx(sm_fit.cov_re.iloc[0, 0], rel=1e-3)
    assert fit.criterion <= -2 * sm_fit.llf + 1e-8


def test_singular_fit_is_flagged():
    d = random_design(11, m=30, sd_u=0.0)
    rng = np.random.default_rng(0)
    # remove any between-participant signal: residuals only
    y = d.X @ np.ones(d.p) + rng.normal(size=d.n)
    y = y - np.bincount(d.group, y)[d.group] / np.bincount(d.group)[d.group] * 0.9
    fit = fit_lmm(ModelData(X=d.X, Z=d.Z, y=y, group=d.group, fixed_names=d.fixed_names))
    assert fit.singular and fit.theta[0] == 0.0
    assert any("singular" in w for w in fit.warnings)


def test_random_slope_with_two_visits_is_refused_like_lme4():
    d = random_design(5, m=20, visits=2, q=2)
    with pytest.raises(ValueError, match=r"number of observations \(\d+\) <= number of random effects"):
        fit_lmm(d)


def test_rank_deficient_design_is_refused():
    d = random_design(5)
    X = np.column_stack([d.X, d.X[:, 1]])
    with pytest.raises(ValueError, match="rank deficient"):
        fit_lmm(ModelData(X=X, Z=d.Z, y=d.y, group=d.group, fixed_names=d.fixed_names + ("dup",)))
