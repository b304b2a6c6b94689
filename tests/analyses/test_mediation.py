"""Mediation paths against R's lm (plan_reference.R); the bootstrap interval against its closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE
from scipy import stats

from pnitrial.analyses.mediation import B_PATH, INDIRECT, PATHS, mediation_data, mediation_table, pair_seed
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.multiplicity import adjust
from pnitrial.report.figures.mediation import path_diagrams

PLAN = pd.read_csv(REFERENCE / "plan.csv", keep_default_na=False, na_values=["NA"])
B = 400


def _ref(y: str, quantity: str) -> float:
    sel = (PLAN["analysis"] == "mediation") & (PLAN["y"] == y) & (PLAN["quantity"] == quantity)
    return float(PLAN.loc[sel, "value"].item())


@pytest.fixture(scope="module")
def demo():
    return build_long_frame(load_codebook(DEMO / "dataset.yaml"))


@pytest.fixture(scope="module")
def table(demo):
    frame, meta = demo
    clinical = [o.key for o in meta.outcomes if o.family == "clinical"]
    return mediation_table(frame, meta, ["oxytocin"], clinical, B, 20261123, 0.05, "bh")


def test_paths_match_r_lm(table):
    for y, rows in table.groupby("outcome"):
        rows = rows.set_index("path")
        assert rows["n_participants"].iloc[0] == _ref(y, "n")
        for path, q in ((PATHS[0], "a"), (B_PATH, "b"), (PATHS[2], "c"), (PATHS[3], "c_direct"), (PATHS[1], "m_only")):
            assert rows.loc[path, "estimate"] == pytest.approx(_ref(y, f"{q}_estimate"), rel=1e-8), (y, path)
            assert rows.loc[path, "se"] == pytest.approx(_ref(y, f"{q}_se"), rel=1e-8), (y, path)
            assert rows.loc[path, "p"] == pytest.approx(_ref(y, f"{q}_p"), rel=1e-7), (y, path)
        assert rows.loc[INDIRECT, "estimate"] == pytest.approx(_ref(y, "indirect"), rel=1e-8)


def test_bias_corrected_bootstrap_recomputed(table, demo):
    """Same resamples (RandomState(seed)), least squares by numpy, Efron's bias-corrected percentiles."""
    frame, meta = demo
    y = "bdi"
    data = mediation_data(frame, meta, "oxytocin", y)
    n = len(data)
    idx = np.random.RandomState(pair_seed(20261123, "oxytocin", y)).choice(np.arange(n), replace=True, size=(B, n))
    X = np.column_stack([np.ones(n), data[["x", "m0", "y0"]]])
    XM = np.column_stack([np.ones(n), data[["x", "m", "m0", "y0"]]])
    ab = np.empty(B)
    for i, rows in enumerate(idx):
        a = np.linalg.lstsq(X[rows], data["m"].to_numpy()[rows], rcond=None)[0][1]
        b = np.linalg.lstsq(XM[rows], data["y"].to_numpy()[rows], rcond=None)[0][2]
        ab[i] = a * b
    got = table[(table["outcome"] == y) & (table["path"] == INDIRECT)].iloc[0]
    z0 = stats.norm.ppf(np.mean(ab < got["estimate"]))
    lo, hi = stats.norm.cdf(2 * z0 + stats.norm.ppf([0.025, 0.975]))
    assert got["ci_low"] == pytest.approx(np.percentile(ab, 100 * lo), rel=1e-9)
    assert got["ci_high"] == pytest.approx(np.percentile(ab, 100 * hi), rel=1e-9)
    assert got["se"] == pytest.approx(ab.std(ddof=1), rel=1e-9)


def test_indirect_p_adjusted_across_pairs_and_seeded(table, demo):
    ind = table[table["path"] == INDIRECT]
    np.testing.assert_allclose(ind["p_fdr"], adjust(ind["p"].to_numpy(), "bh"))
    assert set(ind["p_adjust_method"]) == {"bh"} and table.loc[table["path"] != INDIRECT, "p_fdr"].isna().all()
    frame, meta = demo
    again = mediation_table(frame, meta, ["oxytocin"], ["bdi"], B, 20261123, 0.05, "bh")
    other = mediation_table(frame, meta, ["oxytocin"], ["bdi"], B, 1, 0.05, "bh")
    mine = table[table["outcome"] == "bdi"].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.drop(columns=["p_fdr"]), mine.drop(columns=["p_fdr"]))
    assert other.loc[other["path"] == INDIRECT, "ci_low"].item() != mine.loc[mine["path"] == INDIRECT, "ci_low"].item()


def test_unknown_keys_and_small_samples_are_reported(demo):
    frame, meta = demo
    out = mediation_table(frame, meta, ["cortisol", "oxytocin"], ["bdi"], B, 1, 0.05, "bh", min_n=500)
    assert out["status"].tolist() == ["not in the codebook: cortisol", "too few complete participants (< 500)"]
    assert out["estimate"].isna().all()
    assert path_diagrams(out, meta, "MBPM vs waitlist") is not None
    assert path_diagrams(out.iloc[0:0], meta, "MBPM vs waitlist") is not None


@pytest.mark.parametrize("n", [8, 40])
def test_vectorised_bootstrap_equals_pingouins_on_its_resamples(n):
    """Same seed, same resamples: the indirect effect's bootstrap distribution, SE, interval and p as
    pingouin.mediation_analysis; with 8 participants some resamples hold one arm only (singular)."""
    import pingouin as pg

    from pnitrial.analyses.mediation import bootstrap_indirect, mediation

    rng = np.random.default_rng(n)
    x = (np.arange(n) % 2).astype(float)
    m0, y0 = rng.normal(1.0, 0.5, n), rng.normal(6.0, 1.0, n)
    m = -0.6 * x + rng.normal(0, 0.3, n)
    data = pd.DataFrame({"x": x, "m": m, "y": 1.5 * m + rng.normal(0, 0.5, n), "m0": m0, "y0": y0})
    res, dist = pg.mediation_analysis(
        data=data, x="x", m="m", y="y", covar=["m0", "y0"], n_boot=2000, seed=9, return_dist=True
    )
    boot = bootstrap_indirect(data, 2000, 9)
    np.testing.assert_allclose(boot, dist, rtol=1e-9, atol=1e-12)
    ours = mediation(data, 2000, 9).set_index("path").loc[INDIRECT]
    theirs = res.set_index("path").loc["Indirect"]
    assert ours["estimate"] == pytest.approx(theirs["coef"], rel=1e-10)
    assert ours["se"] == pytest.approx(theirs["se"], rel=1e-9)
    idx = np.random.RandomState(9).choice(np.arange(n), replace=True, size=(2000, n))
    one_arm = (x[idx].min(axis=1) == x[idx].max(axis=1)).sum()
    if n == 8:
        # resamples that permute the sample give a*b itself up to the last bit, so which side of the
        # estimate they fall on (the interval's bias correction) is rounding: only the distribution is compared
        assert one_arm > 0  # singular resamples were solved as pingouin solves them
        # in a resample without the control arm, a is zero up to rounding, and so is the sign p counts
        assert ours["p"] == pytest.approx(theirs["pval"], abs=one_arm / 2000)
        return
    assert ours["p"] == pytest.approx(theirs["pval"], abs=1e-12)
    assert ours["ci_low"] == pytest.approx(theirs["CI2.5"], rel=1e-9)
    assert ours["ci_high"] == pytest.approx(theirs["CI97.5"], rel=1e-9)
