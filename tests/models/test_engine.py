"""The REML engine against a dense closed form, statsmodels, and lme4's refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from pnitrial.models.engine import (
    ModelData,
    deviance,
    fit_lmm,
    sufficient_stats,
    theta_to_lambda,
)
from pnitrial.models.intercept import batch_profile, batch_stats, criterion_derivatives, lambda_derivatives


def intercept_derivatives(s: float, d: ModelData, reml: bool = True) -> tuple[float, float]:
    """The optimiser's closed-form slope and curvature of the criterion in s = theta^2 (one outcome)."""
    bst, _ = batch_stats(d.X, d.group, d.y[:, None])
    dof = bst.n - bst.p if reml else bst.n
    g, h = criterion_derivatives(lambda_derivatives(batch_profile(np.array([s]), bst), bst, reml), dof)
    return float(g[0]), float(h[0])


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


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), s=st.floats(0.01, 20.0), reml=st.booleans())
def test_intercept_derivatives_equal_finite_differences(seed, s, reml):
    d = random_design(seed)
    stats = sufficient_stats(d)

    def f(x):
        return deviance(np.array([np.sqrt(x)]), stats, reml)

    h = 1e-4 * s
    d1, d2 = intercept_derivatives(s, d, reml)
    assert d1 == pytest.approx((f(s + h) - f(s - h)) / (2 * h), rel=1e-6, abs=1e-6)
    # The curvature against central differences of the slope: differencing f twice loses too many digits.
    k = 1e-3 * s
    slope_fd = (intercept_derivatives(s + k, d, reml)[0] - intercept_derivatives(s - k, d, reml)[0]) / (2 * k)
    assert d2 == pytest.approx(slope_fd, rel=1e-5, abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), sd_u=st.sampled_from([0.0, 0.3, 1.0, 3.0]), reml=st.booleans())
def test_newton_fit_equals_a_derivative_free_search(seed, sd_u, reml):
    # Brent's method on the deviance itself, over a bracket known to hold the minimum, is the check.
    d = random_design(seed, m=20, sd_u=sd_u)
    stats = sufficient_stats(d)
    fit = fit_lmm(d, reml=reml)
    res = optimize.minimize_scalar(
        lambda t: deviance(np.array([t]), stats, reml), bounds=(0.0, 50.0), method="bounded", options={"xatol": 1e-10}
    )
    assert fit.criterion <= res.fun + 1e-9
    assert fit.converged and fit.gradient_max < 1e-6
    if not fit.singular:
        assert fit.theta[0] == pytest.approx(res.x, rel=1e-4)
        assert intercept_derivatives(fit.theta[0] ** 2, d, reml)[0] == pytest.approx(0.0, abs=1e-7)


def test_residual_variance_near_zero_is_reported_as_not_converged():
    # theta = sigma_u / sigma_e ~ 1e9 lies beyond any search range: a failure to report, not a crash.
    d = random_design(1, m=20)
    rng = np.random.default_rng(0)
    y = d.X @ np.ones(d.p) + rng.normal(size=20)[d.group] + 1e-9 * rng.normal(size=d.n)
    fit = fit_lmm(ModelData(X=d.X, Z=d.Z, y=y, group=d.group, fixed_names=d.fixed_names))
    assert not fit.converged
    assert any("failed to converge" in w for w in fit.warnings)


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
    # A true boundary minimum: the criterion rises in theta^2 away from zero.
    assert intercept_derivatives(0.0, fit.data)[0] >= 0.0


def test_random_slope_with_two_visits_is_refused_like_lme4():
    d = random_design(5, m=20, visits=2, q=2)
    with pytest.raises(ValueError, match=r"number of observations \(\d+\) <= number of random effects"):
        fit_lmm(d)


def test_rank_deficient_design_is_refused():
    d = random_design(5)
    X = np.column_stack([d.X, d.X[:, 1]])
    with pytest.raises(ValueError, match="rank deficient"):
        fit_lmm(ModelData(X=X, Z=d.Z, y=d.y, group=d.group, fixed_names=d.fixed_names + ("dup",)))
