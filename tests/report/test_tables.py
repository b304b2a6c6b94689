"""Output tables: contract columns, FDR within family, failed fits kept and labelled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO, compile_latex

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame, lod_counts
from pnitrial.inference.multiplicity import benjamini_hochberg
from pnitrial.report.render import to_html, to_latex, to_markdown
from pnitrial.report.table1 import table1
from pnitrial.report.tables import effects_readable, effects_table, fits_table

CONTRACT = [
    "outcome",
    "family",
    "estimand",
    "contrast",
    "estimate",
    "se",
    "df",
    "statistic",
    "p",
    "p_fdr",
    "ci_low",
    "ci_high",
    "scale",
]


@pytest.fixture(scope="module")
def demo():
    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    results = [analyse_outcome(frame, meta, o.key, AnalysisOptions()) for o in meta.outcomes]
    return frame, meta, [r.__dict__ for r in results]


def test_effects_contract_and_fdr_within_family(demo):
    _, meta, res = demo
    eff = effects_table(res, "bh")
    assert set(CONTRACT) <= set(eff.columns)
    lmm = eff[eff["estimand"] == "lmm"]
    assert set(lmm["contrast"]) == {
        "interaction:post",
        "within:intervention:post",
        "within:control:post",
        "between:post",
    }
    assert set(eff.loc[eff["estimand"] != "lmm", "contrast"]) == {"interaction:post"}
    assert set(eff["estimand"]) == {"lmm", "clda", "ancova"}
    for estimand in ("lmm", "clda", "ancova"):
        for fam in ("biomarker", "clinical"):
            rows = eff[
                (eff["estimand"] == estimand)
                & (eff["family"] == fam)
                & (eff["contrast"] == "interaction:post")
                & (eff["scale"] == "model")
            ]
            assert len(rows) == (6 if fam == "biomarker" else 10)
            np.testing.assert_allclose(rows["p_fdr"], benjamini_hochberg(rows["p"].to_numpy()))
    assert eff.loc[eff["contrast"] != "interaction:post", "p_fdr"].isna().all()
    # the primary estimand (clda by default) is flagged on its intervention effects only
    assert set(eff.loc[eff["primary"], "estimand"]) == {"clda"}
    assert set(eff.loc[eff["primary"], "contrast"]) == {"interaction:post"}
    ratio = eff[eff["scale"] == "ratio"]
    assert set(ratio["family"]) == {"biomarker"}
    model = eff[(eff["scale"] == "model") & (eff["family"] == "biomarker")]
    assert len(model) == len(ratio)
    np.testing.assert_allclose(np.log(ratio["estimate"].to_numpy()), model["estimate"].to_numpy())
    np.testing.assert_allclose(ratio["p_fdr"].to_numpy(), model["p_fdr"].to_numpy(), equal_nan=True)


def test_ddf_label_is_honest(demo):
    frame, meta, _ = demo
    z = analyse_outcome(frame, meta, "bdi", AnalysisOptions(ddf="asymptotic"))
    mixed = [e for e in z.effects if e["estimand"] != "ancova"]
    assert {e["statistic_type"] for e in mixed} == {"z"} and all(e["df"] is None for e in mixed)
    # ANCOVA is least squares: its t test is exact whatever the mixed-model df method
    assert {e["ddf_method"] for e in z.effects if e["estimand"] == "ancova"} == {"ols"}
    kr = analyse_outcome(frame, meta, "bdi", AnalysisOptions())
    assert {e["statistic_type"] for e in kr.effects} == {"t"}


def test_failed_fit_is_reported_not_dropped(demo):
    frame, meta, res = demo
    broken = frame[~((frame["outcome"] == "pcs") & (frame["visit"] == "post"))]
    failed = analyse_outcome(broken, meta, "pcs", AnalysisOptions())
    assert {f["estimand"]: f["status"] for f in failed.fits} == {"lmm": "failed", "clda": "failed", "ancova": "failed"}
    assert "later visit" in failed.fits[0]["error"]
    res = [r if r["fits"][0]["outcome"] != "pcs" else failed.__dict__ for r in res]
    eff = effects_table(res, "bh")
    pcs = eff[eff["outcome"] == "pcs"]
    assert len(pcs) == 6 and set(pcs["fit_status"]) == {"failed"} and pcs["estimate"].isna().all()
    fits = fits_table(res)
    assert set(fits.loc[fits["outcome"] == "pcs", "status"]) == {"failed"}
    readable = effects_readable(eff, meta)
    assert set(readable.loc[readable["Outcome"] == "Pain Catastrophizing Scale", "Estimate [95% CI]"]) == {
        "not estimated"
    }


def test_lod_counts(demo):
    frame, meta, _ = demo
    counts = lod_counts(frame, meta)
    raw = pd.read_csv(DEMO / "trial.csv", dtype=str, keep_default_na=False)
    for key in ("oxytocin", "tnfa"):
        assert counts.loc[counts["outcome"] == key, "n_below_lod"].sum() == raw[key].str.startswith("<").sum()
    assert set(counts["method"]) == {"sqrt2"}


def test_table1_and_renderers(demo):
    frame, meta, _ = demo
    t1 = table1(frame, meta)
    assert list(t1.columns) == ["characteristic", "MBPM (intervention)", "waitlist (control)", "healthy"]
    assert t1.iloc[0].tolist() == ["n", "25", "25", "15"]
    age = pd.read_csv(DEMO / "trial.csv").drop_duplicates("participant")
    mbpm = age[age["arm"] == "MBPM"]["age"]
    assert (
        t1.loc[t1["characteristic"] == "age, mean (SD)", "MBPM (intervention)"].item()
        == f"{mbpm.mean():.1f} ({mbpm.std():.1f})"
    )
    md, tex, html = to_markdown(t1, "T"), to_latex(t1, "T"), to_html(t1, "T")
    assert md.count("\n") == len(t1) + 4 and "|---|" in md
    assert r"\begin{tabular}{lrrr}" in tex and r"IL-1\ensuremath{\beta}" in tex and r"\toprule" in tex
    assert html.count("<tr>") == len(t1) + 1


def test_random_slope_refused_with_two_visits_reported_as_failed(demo):
    frame, meta, _ = demo
    meta = dataclasses.replace(meta, visit_times={"pre": 0, "post": 8})
    res = analyse_outcome(frame, meta, "bdi", AnalysisOptions(random_slope=True))
    status = {f["estimand"]: (f["status"], f["error"]) for f in res.fits}
    for estimand in ("lmm", "clda"):
        assert status[estimand][0] == "failed"
        assert "<= number of random effects" in status[estimand][1]
    assert status["ancova"][0] == "ok"  # no random effects there
    assert {e["fit_status"] for e in res.effects if e["estimand"] != "ancova"} == {"failed"}


def test_random_slope_needs_visit_times(demo):
    frame, meta, _ = demo
    res = analyse_outcome(frame, meta, "bdi", AnalysisOptions(random_slope=True))
    assert "visit_times" in res.fits[0]["error"]


def test_singular_fit_flagged_next_to_its_contrasts():
    from conftest import ROOT

    frame, meta = build_long_frame(load_codebook(ROOT / "tests" / "reference" / "cases" / "singular" / "dataset.yaml"))
    res = analyse_outcome(frame, meta, "score", AnalysisOptions())
    lmm = next(f for f in res.fits if f["estimand"] == "lmm")
    assert lmm["status"] == "singular" and lmm["singular"] and "singular" in lmm["warnings"]
    assert {e["fit_status"] for e in res.effects if e["estimand"] == "lmm"} == {"singular"}
    assert res.anova[0]["fit_status"] == "singular"


def test_latex_tables_compile_with_pdflatex(tmp_path):
    """Issue 16: raw Greek letters, hyphens for minus and 48 rows in one float did not compile."""
    from pnitrial.report.render import LONG_TABLE_ROWS, to_latex

    rows = pd.DataFrame(
        {
            "Outcome": ["Salivary IL-1β", "TNF-α & IL_6", "PROMIS-29 pain (T-score)"] * 20,
            "Estimate [95% CI]": ["-1.78 [-4.15, 0.60]", "0.60 × baseline", "−0.26 [±0.1]"] * 20,
            "p": ["< .001", ".003", "1.00"] * 20,
        }
    )
    long_tex, short_tex = tmp_path / "long.tex", tmp_path / "short.tex"
    long_tex.write_text(to_latex(rows, "Intervention effects (intervention x visit)"))
    short_tex.write_text(to_latex(rows.head(3), "Baseline characteristics by group"))
    text = long_tex.read_text()
    assert len(rows) > LONG_TABLE_ROWS and r"\begin{longtable}" in text and r"\toprule" in text
    assert r"\hline" not in text and "β" not in text and "-1.78" not in text and "IL-1" in text
    assert r"\label{tab:intervention-effects-intervention-x-visit}" in text
    res = compile_latex([long_tex, short_tex], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 0


def test_missing_data_summary_says_why_an_analysis_was_not_run(tmp_path):
    """An outcome over missing_data.max_participants is a row with its reason, and the summary says it."""
    from pnitrial.analyses.reference_based import missing_data_analysis
    from pnitrial.report.summary import _missing_data_summary

    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    meta = meta.with_outcomes(tuple(o for o in meta.outcomes if o.key in ("il6", "bdi")))
    effects, tipping = missing_data_analysis(frame, meta, ("MAR", "JR"), (0.0,), max_participants=10)
    assert set(effects["status"]) == {effects["status"].iloc[0]} and effects["status"].iloc[0].startswith("not run")
    effects.to_csv(tmp_path / "md.csv", index=False)
    tipping.to_csv(tmp_path / "tp.csv", index=False)
    html = "\n".join(_missing_data_summary(str(tmp_path / "md.csv"), str(tmp_path / "tp.csv"), meta))
    assert "not estimated" in html and "participants who stop are taken" in html
    assert "Not estimated for some outcomes: not run: 50 participants" in html
