"""The MMRM against R's mmrm (tests/reference/mmrm_reference.R, committed outputs in
tests/reference/expected/mmrm/): every covariance structure, Kenward-Roger with and without its
second-derivative term and Satterthwaite, on real trials with dropout; and its derivatives
against finite differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.models.covariance import STRUCTURES, covariance, covariance_derivatives, n_theta
from pnitrial.models.mmrm import RepeatedData, fit_mmrm, mmrm_pieces

CASES = ROOT / "tests" / "reference" / "cases"
EXPECTED = ROOT / "tests" / "reference" / "expected" / "mmrm"
METHODS = {
    "Kenward-Roger": "kenward-roger",
    "Kenward-Roger-Linear": "kenward-roger-linear",
    "Satterthwaite": "satterthwaite",
}
# the tolerances: estimates 1e-6 (of the SE), SE 1e-5, df 1e-3, p 1e-6
TOL = {"estimate": 1e-6, "se": 1e-5, "df": 1e-3, "p": 1e-6}
# Where R's optimum is measurably short of pnitrial's (a higher REML log-likelihood by more than
# 1e-10: mmrm's L-BFGS-B, even restarted, stops early in flat many-parameter likelihoods such as an
# unstructured 12-visit model, by up to 1e-7), the reference carries fewer digits: a shortfall d in
# the log-likelihood moves the parameters by about sqrt(d) of their SE, so 1e-4 there.
SHORT = {"estimate": 1e-4, "se": 1e-4, "df": 1e-3, "p": 2e-5}


def _random_repeated(seed: int, m: int = 40, T: int = 4) -> RepeatedData:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(m), T)
    v = np.tile(np.arange(T), m)
    arm = (g % 2).astype(float)
    X = np.column_stack([np.ones(m * T)] + [v == k for k in range(1, T)] + [arm * (v == k) for k in range(1, T)])
    y = X @ rng.normal(size=X.shape[1]) + np.repeat(rng.normal(size=m), T) + rng.normal(size=m * T) * (1 + v / 2)
    keep = (rng.random(m * T) > 0.2) | (v == 0)
    return RepeatedData(X[keep].astype(float), y[keep], g[keep], v[keep], T, tuple(f"b{i}" for i in range(X.shape[1])))


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_and_hessian_equal_finite_differences(structure, reml):
    d = _random_repeated(1)
    theta = np.random.default_rng(2).normal(size=n_theta(structure, 4)) * 0.3
    pc = mmrm_pieces(theta, d, structure, reml, order=2)
    h = 1e-5
    eye = np.eye(len(theta)) * h
    num_g = [
        (mmrm_pieces(theta + e, d, structure, reml).criterion - mmrm_pieces(theta - e, d, structure, reml).criterion)
        / (2 * h)
        for e in eye
    ]
    num_h = [
        (
            mmrm_pieces(theta + e, d, structure, reml, 1).gradient
            - mmrm_pieces(theta - e, d, structure, reml, 1).gradient
        )
        / (2 * h)
        for e in eye
    ]
    np.testing.assert_allclose(pc.gradient, num_g, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pc.hessian, np.array(num_h), rtol=1e-6, atol=1e-5)


def test_covariance_parameterisations_are_mmrm_s():
    # toeph over 3 visits: sds exp(theta_0..2), lag correlations theta / sqrt(1 + theta^2)
    S = covariance(np.array([0.0, np.log(2.0), 0.0, 1.0, 0.5]), "toeph", 3)
    r1, r2 = 1 / np.sqrt(2), 0.5 / np.sqrt(1.25)
    np.testing.assert_allclose(S, [[1, 2 * r1, r2], [2 * r1, 4, 2 * r1], [r2, 2 * r1, 1]])
    # cs: invlogit(theta) (1 + a) - a with a = 1 / (T - 1)
    S = covariance(np.array([0.0, 0.0]), "cs", 3)
    assert S[0, 1] == pytest.approx(0.5 * 1.5 - 0.5)


def test_a_participant_with_one_visit_and_intermittent_gaps_are_used():
    d = _random_repeated(4, m=30)
    fit = fit_mmrm(d, "us")
    assert fit.converged and fit.positive_definite and fit.data.n == d.n


def _cases() -> list:
    """Every committed case; the long trials (11-12 visits, unstructured) run with the slow tests."""
    quick = ("btheb", "fdd")
    return [
        pytest.param(c, marks=() if c in quick else pytest.mark.slow)
        for c in sorted(p.stem for p in EXPECTED.glob("*.csv"))
    ]


@pytest.mark.parametrize("case", _cases())
def test_matches_r_mmrm(case):
    ref = pd.read_csv(EXPECTED / f"{case}.csv", keep_default_na=False)
    ref["value"] = pd.to_numeric(ref["value"])
    frame, meta = build_long_frame(load_codebook(CASES / case / "dataset.yaml"))
    checked = 0
    for (key, structure, method), r in ref.groupby(["outcome", "structure", "method"], sort=False):
        opts = AnalysisOptions(ddf=METHODS[method], covariance=structure, covariance_fallback=())
        res = analyse_outcome(frame, meta, key, opts)
        fits = {f["estimand"]: f for f in res.fits}
        for est in ("lmm", "clda"):
            rr = r[r["estimand"] == est].set_index(["quantity", "name"])["value"]
            if rr[("converged", "")] != 1 or fits[est]["status"] != "ok":
                continue  # a structure R or pnitrial cannot fit is checked by the fallback tests
            for q in ("loglik", "aic", "bic"):
                assert fits[est][q] == pytest.approx(rr[(q, "")], rel=1e-8), (case, structure, est, q)
            assert fits[est]["loglik"] >= rr[("loglik", "")] - 1e-9  # never a worse optimum than mmrm's
            tol = SHORT if fits[est]["loglik"] - rr[("loglik", "")] > 1e-10 else TOL
            mine = [e for e in res.effects if e["estimand"] == est and e["scale"] == "model"]
            for e in mine:  # interaction (mmrm df_1d); within and between arms (emmeans on the mmrm fit)
                name = f"{est}|{e['contrast']}"
                se = rr[("se", name)]
                assert e["estimate"] == pytest.approx(rr[("estimate", name)], abs=tol["estimate"] * se), name
                assert e["se"] == pytest.approx(se, rel=tol["se"]), (case, structure, method, name)
                assert e["df"] == pytest.approx(rr[("df", name)], rel=tol["df"]), (case, structure, method, name)
                assert e["p"] == pytest.approx(rr[("p", name)], abs=tol["p"]), (case, structure, method, name)
                checked += 1
            if est == "lmm":
                for e in (e for e in res.emmeans if e["estimand"] == "lmm"):
                    name = f"emm|{e['role']}|{e['visit']}"
                    se = rr[("se", name)]
                    assert e["emmean"] == pytest.approx(rr[("estimate", name)], abs=tol["estimate"] * se), name
                    assert e["se"] == pytest.approx(se, rel=tol["se"]), (case, structure, method, name)
                    assert e["df"] == pytest.approx(rr[("df", name)], rel=tol["df"]), (case, structure, method, name)
                    checked += 1
                (a,) = [x for x in res.anova if x["term"] == "arm:visit"]
                assert a["ndf"] == rr[("F_num_df", "arm:visit")]
                assert a["ddf"] == pytest.approx(rr[("F_denom_df", "arm:visit")], rel=tol["df"])
                assert a["F"] == pytest.approx(rr[("F_f_stat", "arm:visit")], rel=tol["se"])
                assert a["p"] == pytest.approx(rr[("F_p_val", "arm:visit")], abs=tol["p"])
    assert checked > 0


@pytest.mark.slow
def test_fallback_says_which_structure_it_used():
    """bodyweight: 16 rats, 11 visits; us has 66 covariance parameters and does not converge."""
    frame, meta = build_long_frame(load_codebook(CASES / "bodyweight" / "dataset.yaml"))
    res = analyse_outcome(frame, meta, meta.outcomes[0].key, AnalysisOptions(covariance="us"))
    clda = next(f for f in res.fits if f["estimand"] == "clda")
    assert clda["status"] == "ok" and clda["covariance"] != "us"
    assert f"covariance {clda['covariance']} used in place of us" in clda["warnings"]
    eff = [e for e in res.effects if e["estimand"] == "clda"]
    assert {e["covariance"] for e in eff} == {clda["covariance"]}


def test_unstructured_second_derivatives_equal_finite_differences():
    """The unstructured Hessian pieces (never formed as a K x K x T x T array) against central differences."""
    T = 4
    theta = np.random.default_rng(1).normal(size=T * (T + 1) // 2) * 0.5
    _, d2 = covariance_derivatives(theta, "us", T)
    h = 1e-6
    num = np.array(
        [
            (
                covariance_derivatives(theta + e, "us", T, False)[0]
                - covariance_derivatives(theta - e, "us", T, False)[0]
            )
            / (2 * h)
            for e in np.eye(len(theta)) * h
        ]
    )
    dense = d2.dense()
    np.testing.assert_allclose(dense, num, atol=1e-8)
    M = np.random.default_rng(2).normal(size=(T, T))
    M = M + M.T
    np.testing.assert_allclose(d2.traces(M), np.einsum("klab,ba->kl", dense, M), atol=1e-12)
    W = np.random.default_rng(3).normal(size=(len(theta), len(theta)))
    np.testing.assert_allclose(d2.weighted(W + W.T), np.einsum("kl,klab->ab", W + W.T, dense), atol=1e-12)


def test_fit_does_not_depend_on_the_number_of_participants_per_pattern():
    """A pattern enters through its cross-products: duplicating every participant doubles the ML
    criterion and leaves its optimum unchanged."""
    d = _random_repeated(5, m=30)
    twice = RepeatedData(
        np.vstack([d.X, d.X]), np.r_[d.y, d.y], np.r_[d.group, d.group + d.m], np.r_[d.visit, d.visit], 4, d.fixed_names
    )
    a, b = fit_mmrm(d, "us", reml=False), fit_mmrm(twice, "us", reml=False)
    np.testing.assert_allclose(b.criterion, 2 * a.criterion, rtol=1e-12)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-6)


def test_an_unstructured_covariance_the_participants_cannot_support_is_refused_at_once():
    d = _random_repeated(6, m=4, T=4)  # one participant-level column (the intercept)
    with pytest.raises(ValueError, match=r"needs 5 participants or more \(4 here"):
        fit_mmrm(d, "us")
    assert fit_mmrm(d, "ar1").structure == "ar1"


def _panel_of(case: str, n_copies: int = 4, seed: int = 0):
    """A real trial's outcome and noisy copies of it with their own missing values: a panel of MMRMs."""
    from pnitrial.models.design import build_trial_model, repeated_data
    from pnitrial.models.mmrm_batch import Panel

    frame, meta = build_long_frame(load_codebook(CASES / case / "dataset.yaml"))
    d = repeated_data(build_trial_model(frame, meta, meta.outcomes[0]))
    rng = np.random.default_rng(seed)
    Y = d.y[:, None] + rng.normal(scale=0.3 * d.y.std(), size=(d.n, n_copies + 1)) * (np.arange(n_copies + 1) > 0)
    Y[(rng.random(Y.shape) < 0.1) & (d.visit[:, None] > 0) & (np.arange(n_copies + 1) > 0)] = np.nan
    return Panel(d.X, d.group, d.visit, d.n_visits, d.fixed_names, Y)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("case", ["btheb", "fdd"])
def test_a_batch_of_mmrms_equals_one_fit_at_a_time(case, structure):
    """fit_mmrm_batch (all outcomes' patterns, criterion and Newton steps at once) gives each outcome
    fit_mmrm's optimum on its own rows: criterion 1e-9, estimates 1e-7 of the SE, SE 1e-7, KR df 1e-6."""
    from pnitrial.inference.contrasts import Inference
    from pnitrial.models.mmrm_batch import fit_mmrm_batch

    panel = _panel_of(case)
    for reml in (True, False):
        fits = fit_mmrm_batch(panel, structure, reml)
        assert sum(f is not None for f in fits) >= len(fits) - 1
        for a, fit in enumerate(fits):
            if fit is None:
                continue
            data = panel.data(a)
            one = fit_mmrm(data, structure, reml)
            assert fit.converged and one.converged and fit.structure == structure
            assert fit.criterion == pytest.approx(one.criterion, abs=1e-9 * max(1.0, abs(one.criterion)))
            se = np.sqrt(np.diag(one.vcov))
            np.testing.assert_allclose(fit.beta, one.beta, atol=1e-7 * se.min())
            np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), se, rtol=1e-7)
            if reml:
                L = np.eye(data.p)[-1]
                x, y = Inference(fit, "kenward-roger").estimate(L), Inference(one, "kenward-roger").estimate(L)
                assert x.df == pytest.approx(y.df, rel=1e-6) and x.p == pytest.approx(y.p, rel=1e-6, abs=1e-12)


def test_a_batch_fit_does_not_depend_on_its_companions_and_refuses_as_one_fit_does(monkeypatch):
    import pnitrial.models.mmrm_batch as mb

    panel = _panel_of("btheb", n_copies=6, seed=2)
    Y = panel.Y.copy()
    Y[:, 1] = np.where(panel.group < 3, Y[:, 1], np.nan)  # three participants: too few for us
    Y[:, 2] = panel.X @ np.arange(panel.X.shape[1])  # fitted exactly: degenerate
    panel = mb.Panel(panel.X, panel.group, panel.visit, panel.n_visits, panel.fixed_names, Y)
    fits = mb.fit_mmrm_batch(panel, "us")
    assert fits[1] is None and fits[2] is None  # fit_mmrm raises for both: the caller reports why
    for a in (1, 2):
        with pytest.raises(ValueError):
            fit_mmrm(panel.data(a), "us")
    alone = mb.Panel(panel.X, panel.group, panel.visit, panel.n_visits, panel.fixed_names, Y[:, [4]])
    np.testing.assert_allclose(mb.fit_mmrm_batch(alone, "us")[0].theta, fits[4].theta, rtol=1e-10, atol=1e-12)
    monkeypatch.setattr(mb, "BLOCK_FLOATS", 1)  # one analyte per block
    blocked = mb.fit_mmrm_batch(panel, "us")
    for a, b in zip(blocked, fits, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["btheb", "fdd"])
def test_a_panel_of_the_trial_s_outcomes_matches_r_mmrm(case):
    """The panel path (every analyte's MMRM in one batch, models.mmrm_batch) against R's mmrm, every
    structure and df method: each outcome of the trial analysed as an analyte of a panel."""
    from pnitrial.analyses.panel import analyse_panel, wide_from_long

    ref = pd.read_csv(EXPECTED / f"{case}.csv", keep_default_na=False)
    ref["value"] = pd.to_numeric(ref["value"])
    frame, meta = build_long_frame(load_codebook(CASES / case / "dataset.yaml"))
    checked = 0
    for (structure, method), r in ref.groupby(["structure", "method"], sort=False):
        opts = AnalysisOptions(ddf=METHODS[method], covariance=structure, covariance_fallback=())
        for transform in ("none", "log"):
            keys = [o.key for o in meta.outcomes if o.transform == transform]
            if not keys:
                continue
            rows, values = wide_from_long(frame, meta, keys)
            panel = {"analytes": keys, "family": "panel", "transform": transform, "unit": ""}
            eff, fits = analyse_panel(rows, values, meta.with_outcomes(()), panel, opts)
            for (key, est), e in eff[eff["scale"] == "model"].groupby(["outcome", "estimand"]):
                if est == "ancova":
                    continue
                rr = r[(r["outcome"] == key) & (r["estimand"] == est)].set_index(["quantity", "name"])["value"]
                fit = fits[(fits["outcome"] == key) & (fits["estimand"] == est)].iloc[0]
                if rr[("converged", "")] != 1 or fit["status"] != "ok":
                    continue
                assert fit["loglik"] == pytest.approx(rr[("loglik", "")], rel=1e-8), (key, structure, est)
                for row in e.itertuples():
                    name = f"{est}|{row.contrast}"
                    se = rr[("se", name)]
                    assert row.estimate == pytest.approx(rr[("estimate", name)], abs=TOL["estimate"] * se), name
                    assert row.se == pytest.approx(se, rel=TOL["se"]), (structure, method, name)
                    assert row.df == pytest.approx(rr[("df", name)], rel=TOL["df"]), (structure, method, name)
                    assert row.p == pytest.approx(rr[("p", name)], abs=TOL["p"]), (structure, method, name)
                    checked += 1
    assert checked > 100
