"""Permutation inference: every re-randomised batched fit against a brute-force refit, the p formula, seeding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO

from pnitrial.analyses.permutation import (
    outcome_seed,
    permutation_design,
    permutation_test,
    wald_t,
)
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.models.design import build_clda_model, build_trial_model
from pnitrial.models.engine import fit_lmm


@pytest.fixture(scope="module")
def demo():
    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    return frame, meta


def _outcome(meta, key):
    return meta.outcome(key)


@pytest.mark.parametrize("estimand,key", [("clda", "oxytocin"), ("lmm", "bdi")])
def test_rerandomised_fits_equal_brute_force_refits(demo, estimand, key):
    """Relabel the arm in the long frame, rebuild the design with pandas, fit with the single engine."""
    frame, meta = demo
    o = _outcome(meta, key)
    pdz = permutation_design(frame, meta, o, estimand)
    rng = np.random.default_rng(outcome_seed(5, key))
    arms = np.stack([rng.permutation(pdz.arm) for _ in range(12)])
    ((col, _),) = pdz.interactions.values()
    t_batch, ok = wald_t(pdz, arms, [col])
    assert ok.all()
    trial = frame[frame["role"].isin(["intervention", "control"]) & (frame["outcome"] == key)]
    pids = trial.sort_values(["pid", "visit_index"])["pid"].drop_duplicates().to_numpy()
    build = build_clda_model if estimand == "clda" else build_trial_model
    for b in range(len(arms)):
        role = dict(zip(pids, np.where(arms[b] == 1, "intervention", "control"), strict=True))
        relabelled = frame.copy()
        sel = relabelled["pid"].isin(pids)
        relabelled.loc[sel, "role"] = relabelled.loc[sel, "pid"].map(role)
        model = build(relabelled, meta, o)
        fit = fit_lmm(model.data)
        c = model.data.fixed_names.index("armMBPM:visitpost")
        assert t_batch[b, 0] == pytest.approx(fit.beta[c] / np.sqrt(fit.vcov[c, c]), rel=1e-8)
    assert (arms.sum(axis=1) == pdz.arm.sum()).all()  # arm sizes kept


def test_p_value_formula_seeding_and_monte_carlo_se(demo):
    frame, meta = demo
    o = _outcome(meta, "oxytocin")
    B = 400
    (row,) = permutation_test(frame, meta, o, "clda", B, seed=11)
    # recount from the same stream
    pdz = permutation_design(frame, meta, o, "clda")
    rng = np.random.default_rng(outcome_seed(11, "oxytocin"))
    arms = np.stack([rng.permutation(pdz.arm) for _ in range(B)])
    ((col, _),) = pdz.interactions.values()
    t, _ = wald_t(pdz, arms, [col])
    exceed = int((np.abs(t[:, 0]) >= abs(row["wald_t"]) * (1 - 1e-12)).sum())
    assert row["p_permutation"] == pytest.approx((1 + exceed) / (B + 1))
    assert row["mc_se"] == pytest.approx(np.sqrt(row["p_permutation"] * (1 - row["p_permutation"]) / B))
    assert row["rerandomisations_fitted"] == B and row["n_intervention"] + row["n_control"] == len(pdz.arm)
    (again,) = permutation_test(frame, meta, o, "clda", B, seed=11)
    (other,) = permutation_test(frame, meta, o, "clda", B, seed=12)
    assert again == row and other["p_permutation"] != row["p_permutation"]


@pytest.mark.parametrize("estimand,key", [("clda", "il6"), ("lmm", "pcs")])
def test_rerandomised_statistics_equal_fits_of_the_built_designs(demo, estimand, key):
    """fit_rerandomised (statistics affine in the arm vector) against fit_batch on each explicit design."""
    from pnitrial.analyses.permutation import arm_parts
    from pnitrial.models.batch import fit_batch, fit_rerandomised

    frame, meta = demo
    pdz = permutation_design(frame, meta, _outcome(meta, key), estimand)
    rng = np.random.default_rng(3)
    arms = np.stack([rng.permutation(pdz.arm) for _ in range(25)])
    F, G = arm_parts(pdz)
    fits = fit_rerandomised(F, G, pdz.group, pdz.y, arms)
    designs = F[None] + arms[:, pdz.group][:, :, None] * G[None]
    ref = fit_batch(designs, pdz.group, np.broadcast_to(pdz.y[:, None], (len(pdz.y), len(arms))))
    np.testing.assert_allclose(fits.beta, ref.beta, rtol=1e-9, atol=1e-9 * np.abs(ref.beta).max())
    np.testing.assert_allclose(fits.vcov, ref.vcov, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fits.theta, ref.theta, rtol=1e-7, atol=1e-9)
    assert (fits.converged == ref.converged).all()


def test_blocks_sized_to_the_trial_give_the_same_p(demo, monkeypatch):
    """A long trial is re-randomised in smaller blocks (bounded memory); the draws and p are unchanged."""
    import pnitrial.analyses.permutation as permutation

    frame, meta = demo
    o = _outcome(meta, "bdi")
    (whole,) = permutation_test(frame, meta, o, "clda", 300, seed=5)
    design = permutation_design(frame, meta, o, "clda")
    per = len(design.arm) + 4 * int(np.bincount(design.group).max()) * (design.X.shape[1] + 1) ** 2
    monkeypatch.setattr(permutation, "BLOCK_FLOATS", 7 * per)
    (blocks,) = permutation_test(frame, meta, o, "clda", 300, seed=5)  # 43 blocks of 7
    assert blocks == whole


def test_a_huge_effect_is_never_exceeded(demo):
    frame, meta = demo
    o = _outcome(meta, "bdi")
    big = frame.copy()
    hit = (big["outcome"] == "bdi") & (big["role"] == "intervention") & (big["visit"] == "post")
    big.loc[hit, "value"] = big.loc[hit, "value"] - 40
    (row,) = permutation_test(big, meta, o, "clda", 300, seed=1)
    assert row["p_permutation"] == pytest.approx(1 / 301)


def test_ancova_is_not_a_mixed_model_estimand(demo):
    frame, meta = demo
    with pytest.raises(ValueError, match="mixed-model estimands"):
        permutation_design(frame, meta, _outcome(meta, "bdi"), "ancova")


def test_model_and_permutation_p_agree_roughly_on_the_demo(demo):
    """Large-sample sanity: with 25 per arm the two p-values are close (not a parity test)."""
    frame, meta = demo
    from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome

    for key in ("oxytocin", "pcs"):
        (row,) = permutation_test(frame, meta, _outcome(meta, key), "clda", 2000, seed=3)
        eff = pd.DataFrame(analyse_outcome(frame, meta, key, AnalysisOptions()).effects)
        p_model = eff[(eff["estimand"] == "clda") & (eff["scale"] == "model")]["p"].item()
        assert abs(row["p_permutation"] - p_model) < 0.05
