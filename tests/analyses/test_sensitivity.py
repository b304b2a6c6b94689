"""Sensitivity analyses: wilcox.test, t.test and aov from R (plan_reference.R); refits against independent paths."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.analyses.sensitivity import (
    change_scores,
    handle_outliers,
    hodges_lehmann,
    sensitivity_rows,
    sensitivity_table,
    wilcoxon_null_counts,
)
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.report.figures.sensitivity import sensitivity_forest

PLAN = pd.read_csv(REFERENCE / "plan.csv", keep_default_na=False, na_values=["NA"])


def _ref(analysis: str, key: str, quantity: str) -> float:
    sel = (PLAN["analysis"] == analysis) & (PLAN["x"] == key) & (PLAN["quantity"] == quantity)
    return float(PLAN.loc[sel, "value"].item())


@pytest.fixture(scope="module")
def demo():
    return build_long_frame(load_codebook(DEMO / "dataset.yaml"))


@pytest.fixture(scope="module")
def table(demo):
    return sensitivity_table(*demo, AnalysisOptions())


def _row(table, key, prefix):
    whole = table["analysis"].str.match(re.escape(prefix) + r"(?![\w/(])")  # "LOD" is not "LOD/2"
    rows = table[(table["outcome"] == key) & whole]
    assert len(rows) == 1, (key, prefix)
    return rows.iloc[0]


def test_hodges_lehmann_and_wilcoxon_match_r(table, demo):
    methods = set()
    for o in demo[1].outcomes:
        r = _row(table, o.key, "Hodges-Lehmann")
        methods.add(r["method"])
        assert r["statistic"] == _ref("hodges_lehmann", o.key, "W")
        assert r["p"] == pytest.approx(_ref("hodges_lehmann", o.key, "p"), rel=1e-9)
        # exact: order statistics of the pairwise differences; otherwise roots of a step function that
        # R's uniroot locates to within its tolerance of 1e-4 (so do we, by the same Brent method)
        tol = 1e-12 if r["method"].endswith("exact") else 1e-4
        for q in ("estimate", "ci_low", "ci_high"):
            assert r[q] == pytest.approx(_ref("hodges_lehmann", o.key, q), rel=1e-9, abs=tol), (o.key, q)
    # continuous biomarkers take the exact path, tied questionnaire changes the normal approximation
    assert methods == {"Wilcoxon-Mann-Whitney, exact", "Wilcoxon-Mann-Whitney, normal approximation"}


def test_mixed_anova_matches_aov_and_equals_t_squared(table, demo):
    for o in demo[1].outcomes:
        r = _row(table, o.key, "mixed ANOVA")
        k = o.key
        assert r["statistic"] == pytest.approx(_ref("mixed_anova", k, "F"), rel=1e-8)
        assert r["df"] == _ref("mixed_anova", k, "df2")
        assert r["p"] == pytest.approx(_ref("mixed_anova", k, "p"), rel=1e-7)
        for q in ("estimate", "ci_low", "ci_high"):
            assert r[q] == pytest.approx(_ref("change_t", k, q), rel=1e-9, abs=1e-12)
        # two visits, complete data: the interaction F is the squared pooled t of the change scores
        ch = change_scores(*demo, k)
        a, b = ch["intervention"].to_numpy(), ch["control"].to_numpy()
        sp2 = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
        t = (a.mean() - b.mean()) / math.sqrt(sp2 * (1 / len(a) + 1 / len(b)))
        assert r["statistic"] == pytest.approx(t * t, rel=1e-9)


def test_lod_rows_equal_a_long_frame_built_with_that_rule(table, demo):
    frame, meta = demo
    for method, label in (("half", "below-LOD values as LOD/2"), ("lod", "below-LOD values as LOD")):
        other, _ = build_long_frame(load_codebook(DEMO / "dataset.yaml"), lod_method=method)
        for key in ("oxytocin", "tnfa"):
            direct = analyse_outcome(other, meta, key, AnalysisOptions()).effects
            want = next(e for e in direct if e["primary"] and e["scale"] == "model")
            got = _row(table, key, label)
            assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-10)
            assert got["p"] == pytest.approx(want["p"], rel=1e-8)
            assert got["n_changed"] == int(frame.loc[frame["outcome"] == key, "censored"].sum()) > 0
    # outcomes without censored values get no LOD rows
    assert not table[(table["outcome"] == "bdi") & table["analysis"].str.startswith("below-LOD")].shape[0]


def test_complete_case_row_equals_a_refit_on_complete_cases(table, demo):
    frame, meta = demo
    key = "bdi"
    sub = frame[frame["outcome"] == key]
    both = sub.groupby("pid")["visit"].nunique()
    keep = frame[(frame["outcome"] != key) | frame["pid"].isin(both.index[both == 2])]
    direct = analyse_outcome(keep, meta, key, AnalysisOptions()).effects
    want = next(e for e in direct if e["primary"] and e["scale"] == "model")
    got = _row(table, key, "complete cases")
    assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-10)
    assert got["n_changed"] == _row(table, key, "primary")["n_participants"] - got["n_participants"] > 0
    first = _row(table, key, "primary")
    assert first["status"] == "ok" and first["analysis"] == "primary (all available data)"


def test_outliers_winsorised_or_excluded(demo):
    frame, meta = demo
    key = "bdi"
    frame = frame.copy()
    idx = frame.index[(frame["outcome"] == key) & (frame["role"] == "intervention") & (frame["visit"] == "post")][0]
    frame.loc[idx, "value"] = 1e4
    out, n = handle_outliers(frame, meta, key, "winsorise", 3.0)
    trial = frame["role"].isin(["intervention", "control"])
    post = frame[(frame["outcome"] == key) & trial & (frame["visit"] == "post")]["value"]
    # median + 3 robust SD (1.4826 MAD): the outlier cannot inflate its own threshold as a mean + 3 SD would
    bound = post.median() + 3 * 1.482602218505602 * (post - post.median()).abs().median()
    assert n == 1 and out.loc[idx, "value"] == pytest.approx(bound) and bound < 100 < post.mean() + 3 * post.std()
    dropped, n = handle_outliers(frame, meta, key, "exclude", 3.0)
    assert n == 1 and idx not in dropped.index and len(dropped) == len(frame) - 1
    same, n = handle_outliers(frame, meta, key, "none", 3.0)
    assert n == 0 and same is frame
    rows = sensitivity_rows(frame, meta, key, AnalysisOptions(), "exclude", 3.0)
    assert any(r["analysis"] == "outliers beyond 3 robust SD excluded" and r["n_changed"] == 1 for r in rows)
    with pytest.raises(ValueError, match="unknown outlier method"):
        handle_outliers(frame, meta, key, "trim", 3.0)


def test_exact_null_distribution_and_small_cases():
    c = wilcoxon_null_counts(4, 6)
    assert c.sum() == math.comb(10, 4) and (c == c[::-1]).all() and len(c) == 25
    # complete separation, 5 vs 5: W = 25, exact two-sided p = 2 / C(10, 5)
    hl = hodges_lehmann(np.arange(10.0, 15.0), np.arange(5.0))
    assert hl["W"] == 25 and hl["p"] == pytest.approx(2 / math.comb(10, 5)) and hl["estimate"] == 10.0


def test_hodges_lehmann_of_large_arms_needs_no_pairwise_differences():
    import tracemalloc

    rng = np.random.default_rng(8)
    x, y = rng.normal(0.3, 1, 25_000), rng.normal(0, 1, 25_000)
    tracemalloc.start()
    hl = hodges_lehmann(x, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6  # the 625 million differences would take 5 GB
    assert hl["method"] == "normal approximation" and 0.25 < hl["estimate"] < 0.35
    assert hl["ci_low"] < hl["estimate"] < hl["ci_high"] and hl["p"] < 1e-10


def test_one_forest_per_outcome_names_failures(table, demo):
    frame, meta = demo
    broken = table.copy()
    broken.loc[broken.index[broken["outcome"] == "oxytocin"][1], ["estimate", "ci_low", "status"]] = [
        np.nan,
        np.nan,
        "failed: singular design",
    ]
    fig = sensitivity_forest(broken, meta, "oxytocin")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "failed: singular design" in texts
    assert len(fig.axes[0].get_yticklabels()) == (broken["outcome"] == "oxytocin").sum()


def test_integer_scores_are_winsorised_without_a_type_error(demo):
    """Real trials hold integer scores; the winsorised value is a float and must not hit an int64 column."""
    frame, meta = demo
    key = "bdi"
    sub = frame[frame["outcome"] == key].copy()
    sub["value"] = sub["value"].round().astype("int64")
    idx = sub.index[(sub["role"] == "intervention") & (sub["visit"] == "post")][0]
    sub.loc[idx, "value"] = 10_000
    out, n = handle_outliers(sub, meta, key, "winsorise", 3.0)
    assert n == 1 and out["value"].dtype == float and out.loc[idx, "value"] < 100
    rows = sensitivity_rows(sub, meta, key, AnalysisOptions(), "winsorise", 3.0)
    assert all(r["status"] in ("ok", "singular") for r in rows), [r["status"] for r in rows]


def test_an_outcome_entirely_below_the_lod_is_a_failed_row(demo):
    frame, meta = demo
    key = "il6"
    sub = frame[frame["outcome"] == key].copy()
    sub["censored"] = 1
    sub["value"] = sub["lod"].fillna(0.06) / 2**0.5
    rows = sensitivity_rows(sub, meta, key, AnalysisOptions(censored=True), "winsorise", 3.0)
    by = {r["analysis"]: r["status"] for r in rows}
    assert by["Hodges-Lehmann shift of the changes"].startswith("failed: every change score is the same")
    assert all(isinstance(v, str) for v in by.values())


@pytest.mark.parametrize(
    "opts",
    [AnalysisOptions(), AnalysisOptions(censored=True), AnalysisOptions(ddf="satterthwaite", primary="lmm")],
    ids=["kenward-roger", "censored", "satterthwaite-lmm"],
)
def test_batched_refits_equal_the_single_outcome_path(demo, opts):
    """Every refit row fitted in the batch equals analyse_outcome on that variant (one at a time)."""
    import pnitrial.analyses.sensitivity as sensitivity

    frame, meta = demo
    plans = [sensitivity._plan(frame, meta, o.key, opts, "winsorise", 3.0) for o in meta.outcomes]
    refits = [r for plan in plans for r in plan if isinstance(r, sensitivity._Refit)]
    batched = sensitivity._refit_batched(refits, frame, meta, opts, meta.visits[-1])
    assert sum(b is not None for b in batched) >= len(refits) - 2 * len(meta.outcomes)
    assert all(b is None for b, r in zip(batched, refits, strict=True) if r.target() == "censored")
    for b, r in zip(batched, refits, strict=True):
        if b is None:
            continue
        one = sensitivity._refit_one(r, meta, meta.visits[-1])
        assert b["status"] == one["status"] and b["estimand"] == one["estimand"] == r.target()
        assert b["method"] == one["method"] and b["statistic_type"] == one["statistic_type"]
        for q, rtol in (("estimate", 1e-9), ("ci_low", 1e-6), ("df", 1e-6), ("p", 1e-6)):
            assert b[q] == pytest.approx(one[q], rel=rtol, abs=1e-10), (r.key, r.analysis, q)


def test_a_batch_that_fails_as_a_whole_is_refitted_one_at_a_time(demo, monkeypatch, caplog):
    import pnitrial.analyses.sensitivity as sensitivity

    frame, meta = demo
    want = sensitivity_table(frame, meta, AnalysisOptions(), "none")

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(sensitivity, "analyse_panel", broken)
    got = sensitivity_table(frame, meta, AnalysisOptions(), "none")
    pd.testing.assert_frame_equal(got[["outcome", "analysis", "status"]], want[["outcome", "analysis", "status"]])
    np.testing.assert_allclose(got["estimate"].astype(float), want["estimate"].astype(float), rtol=1e-9)
    assert "sensitivity refits" in caplog.text
