"""Reference-based conditional mean imputation: its pieces against direct computation, and rbmi's numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from pnitrial.analyses.reference_based import (
    STRATEGIES,
    _ancova_rows,
    conditional_mean_imputation,
    first_of_trailing_missing,
    fit_imputation_model,
    imputation_data,
    jackknife_se,
    missing_data_analysis,
    reference_based,
    strategy_means,
    tipping_delta,
)
from pnitrial.data.codebook import load_codebook
from pnitrial.data.examples import toy_trial
from pnitrial.data.ice import read_ice
from pnitrial.data.longframe import build_long_frame
from pnitrial.data.table import read_table

BTHEB = ROOT / "tests" / "reference" / "cases" / "btheb" / "dataset.yaml"


def _dropout_trial(seed=4, n=30):
    frame, trial = toy_trial(n=n, visits=("pre", "w4", "w8", "w12"), effect=-2.0, seed=seed)
    gone = (frame["pid"] % 4 == 0) & frame["visit"].isin(["w8", "w12"])
    gap = (frame["pid"] % 7 == 1) & (frame["visit"] == "w4")  # an intermittent gap before the last visit
    return frame[~(gone | gap)], trial


def test_ice_is_the_first_visit_of_the_trailing_missing_run():
    frame, trial = _dropout_trial()
    d = imputation_data(frame, trial, "pain")
    seen = np.isfinite(d.Y)
    for row, ice in zip(seen, d.ice, strict=True):
        assert row[ice:].sum() == 0 and (ice == 0 or row[ice - 1])
    assert first_of_trailing_missing(np.array([[True, False, True]])).tolist() == [3]


def test_strategies_only_change_the_means_after_the_ice():
    rng = np.random.default_rng(1)
    own, ref = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    ice = np.array([0, 1, 2, 3, 4])
    for s in STRATEGIES:
        mu = strategy_means(own, ref, ice, s)
        for i, k in enumerate(ice):
            if s != "CR" and not (s == "CIR" and k == 0):
                assert np.allclose(mu[i, :k], own[i, :k]), s
    jr = strategy_means(own, ref, ice, "JR")
    assert np.allclose(jr[2, 2:], ref[2, 2:])
    cir = strategy_means(own, ref, ice, "CIR")
    assert np.allclose(cir[2, 2:] - cir[2, 1], ref[2, 2:] - ref[2, 1])  # the reference arm's increments
    assert np.allclose(cir[0], ref[0])  # an ICE at the first visit: nothing of its own to copy from
    assert np.allclose(strategy_means(own, ref, ice, "CR"), ref)


def test_conditional_mean_equals_the_gaussian_conditional_expectation():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(4, 4))
    S = A @ A.T + 4 * np.eye(4)
    mu = rng.normal(size=(3, 4))
    Y = mu + rng.normal(size=(3, 4))
    Y[0, 2:] = np.nan
    Y[1, [0, 3]] = np.nan
    Y[2, :] = np.nan
    out = conditional_mean_imputation(Y, mu, S)
    for i in range(3):
        o, m = np.isfinite(Y[i]), ~np.isfinite(Y[i])
        expect = mu[i, m]
        if o.any():
            expect = expect + S[np.ix_(m, o)] @ np.linalg.solve(S[np.ix_(o, o)], Y[i, o] - mu[i, o])
        assert out[i, m] == pytest.approx(expect, rel=1e-12)
        assert np.array_equal(out[i, o], Y[i, o])


def test_ancova_rows_give_the_arm_coefficient_and_the_control_ls_mean():
    rng = np.random.default_rng(3)
    arm = np.repeat([0.0, 1.0], 10)
    Z = rng.normal(size=(20, 2))
    y = 1 + 2 * arm + Z @ [0.5, -1.0] + rng.normal(size=20)
    r_trt, r_ref = _ancova_rows(arm, Z)
    X = np.column_stack([np.ones(20), arm, Z])
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    assert r_trt @ y == pytest.approx(b[1], rel=1e-12)
    assert r_ref @ y == pytest.approx(np.mean(np.column_stack([np.ones(20), np.zeros(20), Z]) @ b), rel=1e-12)


def test_jackknife_se_formula():
    x = np.array([[1.0, 2.0], [2.0, 2.0], [4.0, 2.0]])
    expect = math.sqrt(2 / 3 * np.sum((x[:, 0] - x[:, 0].mean()) ** 2))
    assert jackknife_se(x).tolist() == pytest.approx([expect, 0.0])


def _direct(frame, trial, strategy, delta=0.0, leave_out=None):
    """The effect at every visit by the obvious loop: fit, impute, shift, ANCOVA (no linearity trick)."""
    d = imputation_data(frame, trial, "pain")
    keep = np.ones(d.m, dtype=bool)
    if leave_out is not None:
        keep[leave_out] = False
    model = fit_imputation_model(d, keep)
    Y, arm, Z, ice = d.Y[keep], d.arm[keep], d.Z[keep], d.ice[keep]
    from pnitrial.analyses.reference_based import _design

    own, ref = _design(arm, Z, d.T) @ model.beta, _design(0 * arm, Z, d.T) @ model.beta
    # participants without an event (intermittent gaps only) are missing at random whatever the strategy
    mu = np.array(
        [
            strategy_means(own[i : i + 1], ref[i : i + 1], ice[i : i + 1], strategy if ice[i] < d.T else "MAR")[0]
            for i in range(len(ice))
        ]
    )
    filled = conditional_mean_imputation(Y, mu, model.sigma)
    filled = filled + delta * (~np.isfinite(Y)) * arm[:, None]
    X = np.column_stack([np.ones(len(arm)), arm, Z])
    return np.linalg.lstsq(X, filled, rcond=None)[0][1]


def test_effects_and_jackknife_ses_equal_the_direct_loop_also_with_a_delta():
    frame, trial = _dropout_trial()
    effects, _ = reference_based(frame, trial, "pain", STRATEGIES, deltas=(1.5,))
    m = imputation_data(frame, trial, "pain").m
    for strategy, delta in [(s, 0.0) for s in STRATEGIES] + [("MAR", 1.5)]:
        name = strategy if delta == 0 else "MAR+delta"
        rows = effects[effects["strategy"] == name].sort_values("visit", key=lambda v: v.str[1:].astype(int))
        full = _direct(frame, trial, strategy, delta)
        loo = np.array([_direct(frame, trial, strategy, delta, j) for j in range(m)])
        assert rows["estimate"].to_numpy() == pytest.approx(full, rel=1e-8, abs=1e-10), name
        assert rows["se"].to_numpy() == pytest.approx(jackknife_se(loo), rel=1e-6), name


def test_tipping_point_is_where_p_crosses_alpha():
    frame, trial = _dropout_trial(seed=5, n=40)
    _, tips = reference_based(frame, trial, "pain", ("MAR",))
    tip = tips.iloc[-1]
    assert tip["status"] == "ok" and tip["p"] < 0.05
    effects, _ = reference_based(frame, trial, "pain", ("MAR",), deltas=(tip["tipping_delta"],))
    at = effects[(effects["strategy"] == "MAR+delta") & (effects["visit"] == tip["visit"])].iloc[0]
    assert at["p"] == pytest.approx(0.05, abs=1e-9)
    assert at["estimate"] == pytest.approx(tip["estimate_at_tipping"], rel=1e-9)
    # the tipping delta moves the effect toward the null
    assert abs(at["estimate"]) < abs(tip["estimate"])


def test_tipping_delta_closed_form_against_a_fine_grid():
    rng = np.random.default_rng(7)
    a, b = -2.0, 0.4
    a_j, b_j = a + rng.normal(0, 0.1, 30), b + rng.normal(0, 0.05, 30)
    x, _ = tipping_delta(a, b, a_j, b_j, 0.05)
    grid = np.linspace(0, 2 * x, 20001)
    se = np.sqrt(29 / 30 * (((a_j - a_j.mean())[:, None] + (b_j - b_j.mean())[:, None] * grid) ** 2).sum(axis=0))
    z = np.abs(a + b * grid) / se
    assert grid[np.argmax(z < 1.959963984540054)] == pytest.approx(x, abs=2 * x / 20000)


def test_two_visit_trial_runs_as_a_linear_model_and_failures_are_rows():
    frame, trial = toy_trial(n=20, effect=-1.0, seed=3)
    frame = frame[~((frame["pid"] % 5 == 0) & (frame["visit"] == "post"))]
    effects, tips = missing_data_analysis(frame, trial, STRATEGIES, (0.0, 0.5))
    assert set(effects["status"]) == {"ok"}
    # one later visit: every reference-based strategy is the reference arm's mean after the ICE
    post = effects[effects["scale"] == "model"].set_index("strategy")["estimate"]
    assert post["JR"] == pytest.approx(post["CR"]) and post["CR"] == pytest.approx(post["CIR"])
    tiny = frame[frame["pid"].isin([1, 2, 3])]  # too few participants for any model
    effects, tips = missing_data_analysis(tiny, trial, ("MAR",), (0.0,))
    assert effects["status"].str.startswith("failed").all() and tips["status"].str.startswith("failed").all()


def test_btheb_runs_on_real_dropout():
    frame, meta = build_long_frame(load_codebook(BTHEB))
    effects, tips = missing_data_analysis(frame, meta)
    assert set(effects["status"]) == {"ok"}
    m8 = effects[(effects["visit"] == "m8") & effects["delta"].isna()].set_index("strategy")
    assert m8.loc["MAR", "n_participants"] == 100
    # reference-based strategies shrink the BtheB effect at 8 months toward TAU's, JR most
    assert isinstance(tips, pd.DataFrame) and len(tips) == 4 * 4  # every strategy at every later visit
    # every strategy gets the delta grid; the slope in delta is the same for all of them
    deltas = effects[effects["strategy"].str.endswith("+delta") & (effects["scale"] == "model")]
    assert set(deltas["strategy"]) == {"MAR+delta", "JR+delta", "CR+delta", "CIR+delta"}


RBMI = ROOT / "tests" / "reference" / "expected" / "rbmi"
QUANTITIES = {  # rbmi's name -> ours
    "estimate": "estimate",
    "se": "se",
    "ci_low": "ci_low",
    "ci_high": "ci_high",
    "p": "p",
    "lsm_ref": "lsm_control",
    "lsm_ref_se": "lsm_control_se",
    "lsm_alt": "lsm_intervention",
    "lsm_alt_se": "lsm_intervention_se",
}


BTHEB_ICE = BTHEB.with_name("dataset_ice.yaml")


@pytest.mark.parametrize(
    ("case", "codebook", "outcome"),
    [
        ("btheb", BTHEB, "bdi"),
        ("demo", ROOT / "data" / "demo" / "dataset.yaml", "bdi"),
        ("btheb_ice", BTHEB_ICE, "bdi"),
    ],
)
def test_equals_rbmi_condmean_jackknife(case, codebook, outcome):
    """rbmi 1.x method_condmean(type = "jackknife"), us REML, ANCOVA per visit (tests/reference/rbmi_reference.R)."""
    ref = pd.read_csv(RBMI / f"{case}.csv", dtype={"visit": str})
    cb = load_codebook(codebook)
    frame, meta = build_long_frame(cb)
    ice = read_ice(cb, read_table(cb.table)) if cb.ice is not None else None
    deltas = tuple(sorted(ref["delta"].dropna().unique()))
    ours, _ = reference_based(frame, meta, outcome, STRATEGIES, deltas, ice=ice)
    ours = ours.assign(delta=ours["delta"].fillna(-1.0))
    checked = 0
    for r in ref.itertuples():
        delta = -1.0 if pd.isna(r.delta) else float(r.delta)
        row = ours[(ours["strategy"] == r.strategy) & (ours["delta"] == delta) & (ours["visit"] == r.visit)]
        assert len(row) == 1, (r.strategy, r.delta, r.visit)
        mine = float(row[QUANTITIES[r.quantity]].iloc[0])
        se = float(row["se"].iloc[0])
        if r.quantity == "p":
            assert mine == pytest.approx(r.value, abs=1e-6), r
        elif r.quantity.endswith("se") or r.quantity == "se":
            assert mine == pytest.approx(r.value, rel=1e-5), r
        else:  # estimates and bounds: to 1e-6 of their SE (the optimisers stop at slightly different points)
            assert mine == pytest.approx(r.value, abs=1e-6 * se), r
        checked += 1
    assert checked == len(ref) > 100


def test_an_ice_table_sets_who_has_an_event_and_keeps_later_values_in_the_data():
    cb = load_codebook(BTHEB_ICE)
    frame, meta = build_long_frame(cb)
    ice = read_ice(cb, read_table(cb.table))
    d = imputation_data(frame, meta, "bdi", ice)
    listed = np.isin(np.arange(1, d.m + 1), ice["pid"])  # BtheB's pids are 1..100 in table order
    assert ((d.ice < d.T) == listed).all()
    assert set(d.own_strategy[listed]) == {"MAR", "JR", "CR", "CIR"} and set(d.own_strategy[~listed]) == {""}
    effects, tips = reference_based(frame, meta, "bdi", ("MAR", "JR"), ice=ice)
    assert set(effects["strategy"]) == {"MAR", "JR", "ICE table"}
    m8 = effects[effects["visit"] == "m8"].set_index("strategy")
    # values observed after an event stay in the data under every strategy (rbmi): only missing values are imputed
    imputed = m8[["n_imputed_intervention", "n_imputed_control"]].sum(axis=1)
    assert imputed["JR"] == imputed["MAR"] == imputed["ICE table"] == int((~np.isfinite(d.Y[:, -1])).sum())
    # but they leave the JR imputation model, which changes the imputations
    assert m8.loc["JR", "estimate"] != pytest.approx(m8.loc["MAR", "estimate"], rel=1e-3)
