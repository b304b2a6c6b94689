"""A failed analysis is a row, never a crash; an invalid fit is never labelled ok or tested."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL

from pnitrial.analyses import sensitivity
from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.failures import attempt, failure_status
from pnitrial.report.tables import adjust_effects, effects_table, read_results


@pytest.fixture(scope="module")
def small():
    return build_long_frame(load_codebook(SMALL / "dataset.yaml"))


def _effects(res, estimand):
    return [e for e in res.effects if e["estimand"] == estimand and e["scale"] == "model"]


def test_attempt_logs_the_traceback_and_returns_a_status(caplog):
    def boom():
        raise KeyError("contrast")

    with caplog.at_level(logging.WARNING, logger="pnitrial"):
        got, failed = attempt("il6 permutation test", boom)
    assert got is None and failed == "failed: 'contrast'"
    assert "il6 permutation test: failed" in caplog.text and "Traceback" in caplog.text
    assert failure_status(ValueError("x" * 500)).endswith("...") and len(failure_status(ValueError("x" * 500))) < 220
    assert attempt("fine", lambda a: a + 1, 1) == (2, None)


def test_an_arm_of_one_participant_is_not_fitted(small):
    frame, meta = small
    key = "bdi"
    ids = frame.loc[(frame["outcome"] == key) & (frame["role"] == "intervention"), "pid"].unique()
    lonely = frame[~((frame["outcome"] == key) & frame["pid"].isin(ids[1:]))]
    res = analyse_outcome(lonely, meta, key, AnalysisOptions())
    assert {f["status"] for f in res.fits} == {"failed"}
    assert all("1 participant(s) of the intervention arm" in f["error"] for f in res.fits)
    assert all(e["p"] is None and e["fit_status"] == "failed" for e in res.effects)


def test_a_degenerate_ancova_has_no_p_value(small):
    frame, meta = small
    key = "bdi"
    exact = frame.copy()
    sub = exact[exact["outcome"] == key]
    base = sub[sub["visit_index"] == 0].set_index("pid")["value"]
    post = sub["visit_index"] == 1
    arm = (sub["role"] == "intervention").astype(float) * 2.0
    age = sub["age"] * 0.0
    exact.loc[sub.index[post.to_numpy()], "value"] = (
        sub.loc[post, "pid"].map(base).to_numpy() + arm[post].to_numpy() + age[post].to_numpy()
    )
    exact = exact[~((exact["outcome"] == key) & exact["value"].isna())]
    res = analyse_outcome(exact, meta, key, AnalysisOptions())
    (fit,) = [f for f in res.fits if f["estimand"] == "ancova"]
    assert fit["status"] == "failed" and fit["error"].startswith("degenerate: the model fits")
    assert all(e["p"] is None for e in _effects(res, "ancova"))


def test_censored_model_refuses_an_arm_entirely_below_the_lod(small):
    frame, meta = small
    key = "oxytocin"
    cens = frame.copy()
    cell = (cens["outcome"] == key) & (cens["role"] == "intervention") & (cens["visit_index"] == 1)
    cens.loc[cell, "censored"] = 1
    cens.loc[cell, "lod"] = 4.68
    cens.loc[cell, "value"] = 4.68 / np.sqrt(2)
    res = analyse_outcome(cens, meta, key, AnalysisOptions(censored=True))
    (fit,) = [f for f in res.fits if f["estimand"] == "clda_censored"]
    assert fit["status"] == "failed" and "is below the LOD" in fit["error"]
    rows = _effects(res, "clda_censored")
    assert rows and all(e["ci_high"] is None and e["p"] is None for e in rows)


def test_invalid_fits_stay_out_of_the_multiplicity_adjustment():
    rows = []
    for i, (p, status) in enumerate([(0.01, "ok"), (0.02, "ok"), (None, "not converged"), (0.03, "singular")]):
        rows.append(
            dict(
                outcome=f"o{i}",
                family="f",
                estimand="clda",
                primary=True,
                contrast="interaction:post",
                visit="post",
                scale="model",
                estimate=1.0,
                se=0.5,
                df=10.0,
                statistic=None if p is None else 2.0,
                statistic_type="t",
                p=p,
                ci_low=None,
                ci_high=None,
                ddf_method="kenward-roger",
                covariance="random-intercept",
                fit_status=status,
            )
        )
    out = adjust_effects(pd.DataFrame(rows), "bh")
    assert np.isnan(out["p_fdr"].iloc[2])
    np.testing.assert_allclose(out["p_fdr"].iloc[[0, 1, 3]], [0.03, 0.03, 0.03])  # n = 3, not 4


def test_a_damaged_model_file_is_named(tmp_path):
    bad = tmp_path / "il6.json"
    bad.write_text('{"fits": [')
    with pytest.raises(ValueError, match=r"il6.json: not a valid model result .*delete it and run snakemake again"):
        read_results([bad])


def test_whole_model_failure_is_written_as_a_row(small, tmp_path, monkeypatch):
    from pnitrial import steps
    from pnitrial.data.longframe import write_frame

    frame, meta = small
    write_frame(frame, meta, tmp_path / "long.csv", tmp_path / "meta.json")

    def broken(*args, **kwargs):
        raise IndexError("index 3 is out of bounds")

    import pnitrial.analyses.estimands as estimands

    monkeypatch.setattr(estimands, "analyse_outcome", broken)  # fit_outcome imports it when called
    steps.fit_outcome(str(tmp_path / "long.csv"), str(tmp_path / "meta.json"), "il6", tmp_path / "il6.json", None)
    (fit,) = json.loads((tmp_path / "il6.json").read_text())["fits"]
    assert fit["status"] == "failed" and fit["error"] == "index 3 is out of bounds"
    assert effects_table(read_results([tmp_path / "il6.json"]), "bh").empty


def test_one_outcome_failing_in_sensitivity_leaves_the_others(small, monkeypatch):
    frame, meta = small
    real = sensitivity._plan

    def flaky(frame, meta, key, *args):
        if key == "il6":
            raise RuntimeError("brentq: f(a) and f(b) must have different signs")
        return real(frame, meta, key, *args)

    monkeypatch.setattr(sensitivity, "_plan", flaky)
    table = sensitivity.sensitivity_table(frame, meta, AnalysisOptions(censored=True))
    failed = table[table["outcome"] == "il6"]
    assert len(failed) == 1 and failed["status"].iloc[0].startswith("failed: brentq")
    assert (table[table["outcome"] != "il6"]["status"].isin(["ok", "singular"])).all()
