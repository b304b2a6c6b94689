"""Standardised effects and biomarker-symptom correlations against base R (tests/reference/plan_reference.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE

from pnitrial.analyses.associations import (
    associations,
    change_correlation,
    fisher_ci,
    repeated_measures_correlation,
)
from pnitrial.analyses.baseline import baseline_vs_healthy
from pnitrial.analyses.effect_sizes import effect_sizes, pooled_sd
from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.multiplicity import adjust
from pnitrial.report.figures.associations import association_heatmap

PLAN = pd.read_csv(REFERENCE / "plan.csv", keep_default_na=False, na_values=["NA"])
LMER = pd.read_csv(REFERENCE / "demo.csv", keep_default_na=False, na_values=["NA"])


@pytest.fixture(scope="module")
def demo():
    return build_long_frame(load_codebook(DEMO / "dataset.yaml"))


def _ref(analysis: str, x: str, y: str, quantity: str) -> float:
    row = PLAN[(PLAN["analysis"] == analysis) & (PLAN["x"] == x) & (PLAN["y"] == y) & (PLAN["quantity"] == quantity)]
    return float(row["value"].item())


def _lmer(outcome: str, quantity: str) -> float:
    sel = (LMER["outcome"] == outcome) & (LMER["quantity"] == quantity)
    sel &= (LMER["name"] == "clda|interaction:post") & (LMER["method"] == "kenward-roger")
    return float(LMER.loc[sel, "value"].item())


@pytest.fixture(scope="module")
def sizes(demo):
    frame, meta = demo
    opts = AnalysisOptions()
    eff = pd.DataFrame([e for o in meta.outcomes for e in analyse_outcome(frame, meta, o.key, opts).effects])
    return effect_sizes(eff, baseline_vs_healthy(frame, meta), frame, meta), meta


def test_standardised_difference_matches_r(sizes):
    """R: the cLDA effect and its KR interval (lmerTest + pbkrtest) over R's pooled baseline SD."""
    table, meta = sizes
    std = table[table["effect_size"] == "standardised difference"].set_index("outcome")
    assert len(std) == len(meta.outcomes) and set(std["estimand"]) == {"clda"}
    for o in meta.outcomes:
        k = o.key
        sd = _ref("baseline_sd", k, "", "sd")
        assert std.loc[k, "denominator_sd"] == pytest.approx(sd, rel=1e-9)
        scale = (_lmer(k, "ci_high") - _lmer(k, "ci_low")) / sd  # a bound near 0 has no relative precision
        for ours, theirs in (("value", "estimate"), ("ci_low", "ci_low"), ("ci_high", "ci_high")):
            assert std.loc[k, ours] == pytest.approx(_lmer(k, theirs) / sd, rel=1e-6, abs=1e-6 * scale), (k, ours)


def test_hedges_g_rows_carry_the_baseline_table(sizes, demo):
    table, meta = sizes
    g = table[table["effect_size"] == "Hedges g"].set_index("outcome")
    base = baseline_vs_healthy(*demo).set_index("outcome")
    assert (g["value"] == base["hedges_g"]).all() and (g["ci_high"] == base["g_ci_high"]).all()
    assert (g["n_2"] == base["n_healthy"]).all()


def test_pooled_sd_closed_form():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([3.0, 3.5])
    ss = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()
    assert pooled_sd([a, b]) == pytest.approx(np.sqrt(ss / 3))
    assert np.isnan(pooled_sd([np.array([1.0]), np.array([2.0])]))


@pytest.fixture(scope="module")
def matrix(demo):
    frame, meta = demo
    return associations(frame, meta, "biomarker", "clinical", "bh")


def test_correlations_match_r(matrix):
    """rm_corr against lm(y ~ participant + x); change-change against cor.test."""
    assert (matrix["status"] == "ok").all()
    n_pairs = 0
    for r in matrix.itertuples():
        n_pairs += 1
        assert r.r == pytest.approx(_ref(r.analysis, r.biomarker, r.clinical, "r"), rel=1e-8, abs=1e-12)
        assert r.p == pytest.approx(_ref(r.analysis, r.biomarker, r.clinical, "p"), rel=1e-7, abs=1e-12)
        if r.analysis == "change_spearman":
            assert r.n_participants == _ref(r.analysis, r.biomarker, r.clinical, "n")
            continue
        assert r.df == _ref(r.analysis, r.biomarker, r.clinical, "df")
        for q in ("ci_low", "ci_high"):
            assert getattr(r, q) == pytest.approx(_ref(r.analysis, r.biomarker, r.clinical, q), rel=1e-8)
    assert n_pairs == 3 * 6 * 10


def test_fdr_over_each_matrix(matrix):
    for _analysis, g in matrix.groupby("analysis"):
        assert len(g) == 60
        np.testing.assert_allclose(g["p_fdr"], adjust(g["p"].to_numpy(), "bh"), rtol=1e-12)
    assert set(matrix["p_adjust_method"]) == {"bh"}


def test_too_few_participants_is_reported_not_computed(demo):
    frame, meta = demo
    keep = frame["pid"].isin(frame["pid"].drop_duplicates().iloc[:12])
    out = associations(frame[keep], meta, "biomarker", "clinical", "bh", min_n=30)
    assert out["r"].isna().all() and out["status"].str.startswith("too few").all()


def test_missing_family_gives_an_empty_table_and_a_figure(demo):
    frame, meta = demo
    out = associations(frame, meta, "proteins", "clinical", "bh")
    assert out.empty
    assert association_heatmap(out, meta) is not None


def test_perfect_and_fisher_edge_cases():
    x = np.arange(6.0)
    res = change_correlation(x, 2 * x + 1, "pearson")
    assert res["r"] == pytest.approx(1.0) and res["p"] < 1e-12
    lo, hi = fisher_ci(0.5, 28, 0.05)
    z = np.arctanh(0.5)
    assert (lo, hi) == pytest.approx((np.tanh(z - 1.959963984540054 / 5), np.tanh(z + 1.959963984540054 / 5)))


def test_rm_corr_equals_pingouins_ancova_with_unequal_visits_and_is_linear_in_memory():
    import tracemalloc
    import warnings

    import pingouin as pg

    rng = np.random.default_rng(11)
    pid = np.repeat(np.arange(40), rng.integers(2, 6, 40))  # 2 to 5 visits each
    x = rng.normal(size=len(pid)) + pid % 7
    data = pd.DataFrame({"pid": pid, "x": x, "y": 0.4 * x + rng.normal(size=len(pid)) - pid % 5})
    ours = repeated_measures_correlation(data)
    with warnings.catch_warnings():  # pingouin's own use of a deprecated pandas keyword
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        theirs = pg.rm_corr(data=data, x="x", y="y", subject="pid")
    assert ours["r"] == pytest.approx(float(theirs["r"].iloc[0]), rel=1e-10)
    assert ours["p"] == pytest.approx(float(theirs["pval"].iloc[0]), rel=1e-8)
    assert ours["df"] == int(theirs["dof"].iloc[0])
    # 50,000 participants x 2 visits: the ANCOVA's participant dummies would need 40 GB
    n = 50_000
    big = pd.DataFrame({"pid": np.repeat(np.arange(n), 2), "x": rng.normal(size=2 * n)})
    big["y"] = 0.3 * big["x"] + rng.normal(size=2 * n)
    tracemalloc.start()
    res = repeated_measures_correlation(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert res["df"] == n - 1 and 0.2 < res["r"] < 0.5
    assert peak < 50e6
