"""The batched engine and its closed-form inference: against R, the single-fit engine, statsmodels.

- R: every random-intercept reference case (tests/reference) run through the panel path.
- The single-fit engine and its numerical-derivative Satterthwaite / dense Kenward-Roger.
- statsmodels MixedLM as an independent optimiser.
- Batched results are bitwise identical to one-at-a-time results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import REFERENCE, TOLERANCE
from test_engine import dense_reml_deviance

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.analyses.panel import analyse_panel, wide_from_long
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.contrasts import METHODS, Inference, batch_estimates
from pnitrial.models.batch import fit_batch
from pnitrial.models.design import trial_columns, trial_contrasts
from pnitrial.models.engine import ModelData, fit_lmm
from pnitrial.models.intercept import batch_deviance, batch_stats
from pnitrial.models.linalg import chol, chol_inv, chol_solve

CASES = ROOT / "tests" / "reference" / "cases"
RANDOM_INTERCEPT_CASES = {
    "demo": DEMO / "dataset.yaml",
    "btheb": CASES / "btheb" / "dataset.yaml",
    "unbalanced3": CASES / "unbalanced3" / "dataset.yaml",
    "singular": CASES / "singular" / "dataset.yaml",
}


def _panel_of(codebook):
    """A trial's outcomes of one transform as a panel: (frame, meta, rows, values, panel spec)."""
    frame, meta = build_long_frame(load_codebook(codebook))
    out = []
    for transform in ("none", "log"):
        keys = [o.key for o in meta.outcomes if o.transform == transform]
        if keys:
            rows, values = wide_from_long(frame, meta, keys)
            out.append((rows, values, {"analytes": keys, "family": "f", "transform": transform, "unit": ""}))
    return frame, meta, out


def batch_values(codebook) -> pd.DataFrame:
    """The batched path's numbers in the layout of tests/reference/expected/*.csv."""
    frame, meta, panels = _panel_of(codebook)
    recs = []
    for rows, values, panel in panels:
        keys = panel["analytes"]
        sub = rows[rows["role"].isin(["intervention", "control"])].reset_index(drop=True)
        keep = sub.index[sub[list(meta.covariates)].notna().all(axis=1)] if meta.covariates else sub.index
        sub = sub.loc[keep].reset_index(drop=True)
        Y = values[rows["role"].isin(["intervention", "control"]).to_numpy()][keep]
        Y = np.log(Y) if panel["transform"] == "log" else Y
        visits = [v for v in meta.visits if v in set(sub["visit"])]
        cols, names, _, grid = trial_columns(sub, visits, meta)
        fit = fit_batch(np.column_stack(cols), sub["pid"].to_numpy(), Y)
        for k, key in enumerate(keys):
            for j, name in enumerate(names):
                recs += [
                    (key, "coef", name, "", fit.beta[k, j]),
                    (key, "coef_se", name, "", np.sqrt(fit.vcov[k, j, j])),
                ]
            recs += [
                (key, "var_participant", "", "", fit.var_participant[k]),
                (key, "var_residual", "", "", fit.sigma[k] ** 2),
                (key, "reml_criterion", "", "", fit.criterion[k]),
                (key, "theta", "1", "", fit.theta[k]),
                (key, "singular", "", "", float(fit.singular[k])),
                (key, "n_obs", "", "", float(fit.n_obs[k])),
            ]
        for method in METHODS:
            for contrast, _v, L in trial_contrasts(grid):
                e = batch_estimates(fit, L, method)
                for q in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high"):
                    recs += [(key, q, contrast, method, getattr(e, q)[k]) for k, key in enumerate(keys)]
            eff, _ = analyse_panel(rows, values, meta, panel, AnalysisOptions(ddf=method))
            eff = eff[eff["estimand"].isin(["clda", "ancova"]) & (eff["scale"] == "model")]
            for r in eff.itertuples():
                label = "ols" if r.estimand == "ancova" else method
                for q in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high"):
                    v = getattr(r, q)
                    recs.append((r.outcome, q, f"{r.estimand}|{r.contrast}", label, np.inf if pd.isna(v) else v))
    return pd.DataFrame(recs, columns=["outcome", "quantity", "name", "method", "value"])


@pytest.mark.parametrize("case", sorted(RANDOM_INTERCEPT_CASES))
def test_batched_path_matches_r(case):
    ref = pd.read_csv(REFERENCE / f"{case}.csv", keep_default_na=False, na_values=["NA"])
    ref = ref[ref["quantity"].isin(TOLERANCE) & ~ref["quantity"].str.startswith(("emm", "F", "clda_"))]
    ours = batch_values(RANDOM_INTERCEPT_CASES[case])
    ref = ref.fillna({"name": "", "method": ""})
    ref["value"] = ref["value"].replace({"Inf": np.inf}).astype(float)
    m = ref.merge(ours, on=["outcome", "quantity", "name", "method"], how="left", suffixes=("_r", "_b"))
    assert m["value_b"].notna().all(), m[m["value_b"].isna()].head()
    checked = 0
    for q, (kind, tol) in TOLERANCE.items():
        sub = m[m["quantity"] == q]
        r, b = sub["value_r"].to_numpy(), sub["value_b"].to_numpy()
        both_inf = np.isinf(r) & np.isinf(b)
        bound = np.maximum(tol * np.abs(r), 1e-8) if kind == "rel" else tol
        with np.errstate(invalid="ignore"):
            ok = both_inf | (np.abs(b - r) <= bound)
        assert ok.all(), sub[~ok].head(10).to_string()
        checked += len(sub)
    assert checked > 100


@pytest.mark.parametrize("case", ["demo", "btheb"])
@pytest.mark.parametrize("ddf", ["kenward-roger", "satterthwaite"])
def test_panel_path_equals_single_fit_path(case, ddf):
    """Every effect row of analyse_panel equals analyse_outcome's (estimates 1e-6, df 1e-5)."""
    frame, meta, panels = _panel_of(RANDOM_INTERCEPT_CASES[case])
    opts = AnalysisOptions(ddf=ddf, covariance="random-intercept")
    for rows, values, panel in panels:
        eff, fits = analyse_panel(rows, values, meta, panel, opts)
        single = pd.DataFrame([e for k in panel["analytes"] for e in analyse_outcome(frame, meta, k, opts).effects])
        key = ["outcome", "estimand", "contrast", "visit", "scale"]
        m = single.merge(eff, on=key, suffixes=("_s", "_b"), validate="one_to_one")
        assert len(m) == len(single) == len(eff)
        assert (m["fit_status_s"] == m["fit_status_b"]).all()
        assert (m["primary_s"] == m["primary_b"]).all()
        for q, rtol in (("estimate", 1e-6), ("se", 1e-6), ("df", 1e-5), ("ci_low", 1e-6)):
            np.testing.assert_allclose(m[f"{q}_b"].astype(float), m[f"{q}_s"].astype(float), rtol=rtol, atol=1e-8)
        np.testing.assert_allclose(m["p_b"].astype(float), m["p_s"].astype(float), atol=1e-6)
        assert set(fits["status"]) <= {"ok", "singular"}


def _random_panel(seed: int, K: int = 40, m: int = 30, visits: int = 3, missing: float = 0.15):
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(m), visits)
    arm = np.repeat(np.arange(m) % 2, visits).astype(float)
    t = np.tile(np.arange(visits), m).astype(float)
    X = np.column_stack([np.ones(m * visits), arm, t, arm * t, rng.normal(size=m * visits)])
    sd_u = rng.choice([0.0, 0.3, 1.0, 3.0], size=K)
    Y = X @ rng.normal(size=(5, K)) + rng.normal(size=(m, K))[group] * sd_u + rng.normal(size=(m * visits, K))
    Y[rng.random(Y.shape) < missing] = np.nan
    return X, group, Y


def test_batched_equals_one_at_a_time_bitwise():
    X, group, Y = _random_panel(1)
    many = fit_batch(X, group, Y)
    for k in range(Y.shape[1]):
        one = fit_batch(X, group, Y[:, [k]])
        assert one.theta[0] == many.theta[k]
        assert np.array_equal(one.beta[0], many.beta[k])
        assert np.array_equal(one.vcov[0], many.vcov[k])
        for method in ("kenward-roger", "satterthwaite"):
            L = np.array([0, 0, 0, 1.0, 0])
            a, b = batch_estimates(one, L, method), batch_estimates(many, L, method)
            assert a.df[0] == b.df[k] and a.se[0] == b.se[k]


def test_internal_blocks_do_not_change_results(monkeypatch):
    import pnitrial.models.batch as batch

    X, group, Y = _random_panel(2, K=30)
    whole = fit_batch(X, group, Y)
    monkeypatch.setattr(batch, "BLOCK_FLOATS", 7 * X.shape[0] * (X.shape[1] + 2))  # blocks of 7 outcomes
    blocked = fit_batch(X, group, Y)
    assert np.array_equal(whole.beta, blocked.beta) and np.array_equal(whole.theta, blocked.theta)
    e1 = batch_estimates(whole, np.eye(5)[3], "kenward-roger")
    e2 = batch_estimates(blocked, np.eye(5)[3], "kenward-roger")
    assert np.array_equal(e1.df, e2.df)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000), reml=st.booleans())
def test_batch_equals_single_engine_on_random_designs(seed, reml):
    """Unbalanced designs with a covariate and missing rows, REML and ML, every ddf method."""
    X, group, Y = _random_panel(seed, K=6)
    batch = fit_batch(X, group, Y, reml=reml)
    L = np.array([0, 0, 0, 1.0, 0])
    for k in range(Y.shape[1]):
        ok = np.isfinite(Y[:, k])
        d = ModelData(X=X[ok], Z=np.ones((ok.sum(), 1)), y=Y[ok, k], group=group[ok], fixed_names=tuple("abcde"))
        single = fit_lmm(d, reml=reml)
        assert batch.criterion[k] <= single.criterion + 1e-9  # never a worse optimum
        assert batch.criterion[k] == pytest.approx(single.criterion, rel=1e-9)
        np.testing.assert_allclose(batch.beta[k], single.beta, rtol=1e-5, atol=1e-7)
        assert batch.singular[k] == single.singular
        if not reml:
            continue
        for method in METHODS:
            e, s = batch_estimates(batch, L, method), Inference(single, method).estimate(L)
            assert e.se[k] == pytest.approx(s.se, rel=1e-5)
            if np.isfinite(s.df):
                assert e.df[k] == pytest.approx(s.df, rel=1e-4)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000), lam=st.floats(0.0, 50.0))
def test_batch_criterion_equals_dense_closed_form(seed, lam):
    X, group, Y = _random_panel(seed, K=1, m=10)
    ok = np.isfinite(Y[:, 0])
    d = ModelData(X=X[ok], Z=np.ones((ok.sum(), 1)), y=Y[ok, 0], group=group[ok], fixed_names=tuple("abcde"))
    st_, _ = batch_stats(X, group, Y)
    dense = dense_reml_deviance(np.array([np.sqrt(lam)]), d)
    assert batch_deviance(np.array([lam]), st_)[0] == pytest.approx(dense, rel=1e-10)


def test_agrees_with_statsmodels():
    import statsmodels.api as sm

    X, group, Y = _random_panel(4, K=5, m=40, missing=0.1)
    fit = fit_batch(X, group, Y)
    for k in range(Y.shape[1]):
        ok = np.isfinite(Y[:, k])
        df = pd.DataFrame(X[ok, 1:], columns=["arm", "t", "armt", "x"]).assign(y=Y[ok, k], g=group[ok])
        smf = sm.MixedLM.from_formula("y ~ arm + t + armt + x", groups="g", data=df).fit(reml=True)
        np.testing.assert_allclose(fit.beta[k], smf.fe_params.to_numpy(), rtol=1e-4, atol=1e-4)
        assert fit.sigma[k] ** 2 == pytest.approx(smf.scale, rel=1e-3)
        assert fit.criterion[k] <= -2 * smf.llf + 1e-8  # statsmodels stops short; we are never worse


def test_one_design_per_outcome_equals_separate_fits():
    """Re-randomised arm labels: X given per outcome (the permutation use)."""
    X, group, Y = _random_panel(5, K=4)
    rng = np.random.default_rng(0)
    Xs = []
    for _ in range(4):
        arm = np.repeat(rng.permutation(np.arange(30) % 2), 3).astype(float)
        Xs.append(np.column_stack([X[:, 0], arm, X[:, 2], arm * X[:, 2], X[:, 4]]))
    together = fit_batch(np.stack(Xs), group, Y)
    for k in range(4):
        alone = fit_batch(Xs[k], group, Y[:, [k]])
        np.testing.assert_allclose(together.beta[k], alone.beta[0], rtol=1e-12, atol=1e-14)
        assert together.theta[k] == pytest.approx(alone.theta[0], rel=1e-10, abs=1e-14)


def test_unfittable_outcomes_are_reported_not_raised():
    X, group, Y = _random_panel(6, K=3)
    Y[:, 1] = np.nan
    Y[:4, 1] = 1.0  # four observations, five fixed effects
    Y[X[:, 1] == 1, 2] = np.nan  # one arm entirely missing: rank deficient
    fit = fit_batch(X, group, Y)
    assert fit.error[0] == ""
    assert "cannot estimate" in fit.error[1] and "rank deficient" in fit.error[2]
    assert np.isnan(fit.beta[1:]).all() and np.isfinite(fit.beta[0]).all()
    assert not fit.converged[1:].any()


def test_failed_and_singular_rows_in_panel_tables():
    frame, meta, panels = _panel_of(RANDOM_INTERCEPT_CASES["singular"])
    rows, values, panel = panels[0]
    values = np.column_stack([values, np.where(rows["role"] == "intervention", np.nan, values[:, 0])])
    panel = dict(panel, analytes=[*panel["analytes"], "broken"])
    eff, fits = analyse_panel(rows, values, meta, panel, AnalysisOptions())
    assert set(fits.loc[fits["outcome"] == "broken", "status"]) == {"failed"}
    assert eff.loc[eff["outcome"] == "broken", "estimate"].isna().all()
    assert (fits.loc[(fits["outcome"] == "score") & (fits["estimand"] != "ancova"), "status"] == "singular").all()


def test_small_matrix_algebra_matches_lapack():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 6, 6))
    A = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(6)
    b = rng.normal(size=(50, 6))
    L = chol(A)
    np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chol_solve(L, b), np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chol_inv(L), np.linalg.inv(A), rtol=1e-9, atol=1e-12)
    assert np.isnan(chol(-A)).any()


def test_deletions_equal_refits_without_each_participant():
    from pnitrial.analyses.diagnostics import without_participant
    from pnitrial.models.batch import fit_deletions
    from pnitrial.models.engine import ModelData, fit_lmm

    rng = np.random.default_rng(3)
    m = 30
    size = rng.integers(1, 4, m)  # 1 to 3 visits, so deletions change every cluster-size class
    g = np.repeat(np.arange(m), size)
    t = np.concatenate([np.arange(k) for k in size]).astype(float)
    arm = (g % 2).astype(float)
    age = rng.normal(50, 10, m)[g]
    X = np.column_stack([np.ones(len(g)), arm, t, arm * t, age])
    y = X @ [10, 1, -0.5, -1.0, 0.05] + rng.normal(0, 2, m)[g] + rng.normal(0, 1, len(g))
    X[g == 7, 4] = 0.0  # participant 7 alone carries a dummy: deleting it leaves a rank-deficient design
    X = np.column_stack([X, (g == 7).astype(float)])
    fits = fit_deletions(X, g, y, block=7)  # several blocks
    data = ModelData(X, np.ones((len(g), 1)), y, g, tuple(f"x{i}" for i in range(X.shape[1])))
    for k in range(m):
        if k == 7:
            assert fits.error[k] == "fixed-effects design is rank deficient"
            continue
        ref = fit_lmm(without_participant(data, k))
        assert fits.error[k] == "" and bool(fits.converged[k]) == ref.converged
        np.testing.assert_allclose(fits.beta[k], ref.beta, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(fits.theta[k], ref.theta[0], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fits.sigma[k], ref.sigma, rtol=1e-9)
        np.testing.assert_allclose(fits.vcov[k], ref.vcov, rtol=1e-7, atol=1e-12)
