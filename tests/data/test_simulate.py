"""The bundled trial is what the simulator makes, and the analysis recovers its truth."""

from __future__ import annotations

import yaml
from conftest import DEMO

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.data.simulate import simulate_trial, write_demo

SEED = yaml.safe_load((DEMO / "truth.yaml").read_text())["seed"]


def test_demo_files_regenerate_byte_identical(tmp_path):
    for path in write_demo(tmp_path, SEED):
        assert path.read_bytes() == (DEMO / path.name).read_bytes(), path.name


def test_design_is_as_specified():
    table, codebook, truth = simulate_trial(SEED)
    people = table.drop_duplicates("participant")
    assert people["arm"].value_counts().to_dict() == {"MBPM": 25, "waitlist": 25, "healthy": 15}
    assert set(table.loc[table["arm"] == "healthy", "visit"]) == {"pre"}
    n_post = (table["visit"] == "post").sum()
    assert n_post == 45  # 10% of 50 patients missing at post
    assert codebook["covariates"] == ["age", "sex"]
    for key in ("bdi", "pcs", "ffmq", "pain_intensity", "sfmpq"):
        values = table[key][table[key] != ""].astype(float)
        lo, hi = codebook["outcomes"][key]["range"]
        assert values.between(lo, hi).all() and (values == values.round()).all(), key
    assert table["oxytocin"].str.startswith("<").any()  # below-LOD exported as the lab does
    assert truth["effects"]["oxytocin"]["interaction"] == 0.30


def test_oxytocin_effect_detected_and_truth_covered():
    truth = yaml.safe_load((DEMO / "truth.yaml").read_text())["effects"]
    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    res = analyse_outcome(frame, meta, "oxytocin", AnalysisOptions())
    for estimand in ("clda", "ancova", "lmm"):
        (e,) = [
            r
            for r in res.effects
            if r["estimand"] == estimand and r["contrast"] == "interaction:post" and r["scale"] == "model"
        ]
        assert e["p"] < 0.05, estimand
        assert e["ci_low"] < truth["oxytocin"]["interaction"] < e["ci_high"], estimand
        (ratio,) = [
            r
            for r in res.effects
            if r["estimand"] == estimand and r["contrast"] == "interaction:post" and r["scale"] == "ratio"
        ]
        assert ratio["ci_low"] < truth["oxytocin"]["ratio"] < ratio["ci_high"], estimand
