"""statsmodels MixedLM as the fallback optimiser: mapped to lme4's theta, re-profiled, used only when better."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_batch import RANDOM_INTERCEPT_CASES, _panel_of
from test_engine import random_design

import pnitrial.models.fallback as fallback
from pnitrial.analyses.estimands import AnalysisOptions
from pnitrial.analyses.panel import analyse_panel
from pnitrial.models.engine import deviance, fit_lmm, sufficient_stats, theta_to_lambda


def test_theta_from_covariance_round_trips_lme4_order():
    theta = np.array([0.8, -0.3, 0.5])
    lam = theta_to_lambda(theta, 2)
    np.testing.assert_allclose(fallback.theta_from_cov(2.0 * lam @ lam.T, 2.0), theta, atol=1e-7)


@pytest.mark.parametrize("q", [1, 2])
def test_statsmodels_fit_is_reprofiled_exactly(q):
    d = random_design(8, m=40, visits=4, q=q)
    ours, theirs = fit_lmm(d), fallback.fit_statsmodels(d)
    assert theirs.criterion == pytest.approx(deviance(theirs.theta, sufficient_stats(d)), rel=1e-12)
    assert theirs.criterion >= ours.criterion - 1e-9  # our engine's optimum is never worse
    np.testing.assert_allclose(theirs.beta, ours.beta, rtol=1e-3, atol=1e-3)
    assert fallback.FALLBACK_NOTE in theirs.warnings


def test_fallback_used_only_when_the_engine_fails_and_it_does_better(monkeypatch):
    d = random_design(9, m=30)
    good = fit_lmm(d)
    assert fallback.fit_with_fallback(d).theta == pytest.approx(good.theta)  # converged: engine's own fit
    st = sufficient_stats(d)
    stuck = dataclasses.replace(good, theta=good.theta * 3, converged=False, criterion=deviance(good.theta * 3, st))
    monkeypatch.setattr(fallback, "fit_lmm", lambda data, reml=True: stuck)
    rescued = fallback.fit_with_fallback(d)
    assert rescued.converged and rescued.criterion < stuck.criterion
    assert fallback.FALLBACK_NOTE in rescued.warnings
    assert rescued.theta[0] == pytest.approx(good.theta[0], rel=1e-3)


def test_panel_refits_non_converged_analytes_one_at_a_time(monkeypatch):
    import pnitrial.analyses.panel as pa

    frame, meta, panels = _panel_of(RANDOM_INTERCEPT_CASES["demo"])
    rows, values, panel = panels[1]  # the clinical scores
    opts = AnalysisOptions()
    plain, _ = analyse_panel(rows, values, meta, panel, opts)
    real = pa.fit_batch

    def first_not_converged(*a, **k):
        fit = real(*a, **k)
        fit.converged[0] = False
        return fit

    monkeypatch.setattr(pa, "fit_batch", first_not_converged)
    eff, fits = analyse_panel(rows, values, meta, panel, opts)
    first = panel["analytes"][0]
    assert set(fits.loc[fits["outcome"] == first, "status"]) == {"ok"}  # refitted by the single-fit engine
    assert list(eff["outcome"].drop_duplicates()) == list(panel["analytes"])
    np.testing.assert_allclose(eff["estimate"], plain["estimate"], rtol=1e-6, atol=1e-8)
