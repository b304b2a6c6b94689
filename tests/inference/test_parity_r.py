"""Every number pnitrial reports equals R (lme4 + lmerTest + pbkrtest + emmeans, lm) on the same data.

Reference CSVs are written by tests/reference/lmer_reference.R (see run_all.sh); CI re-runs the
R scripts and checks the committed CSVs still match what R produces. Cases: the bundled trial;
Beat the Blues (real data, five visits, dropout); an unbalanced three-visit trial with covariates;
a singular boundary fit; a random-slope model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from conftest import DEMO, ROOT
from parity import REFERENCE, compare, pnitrial_values

CASES = ROOT / "tests" / "reference" / "cases"
CODEBOOKS = {"demo": DEMO / "dataset.yaml", **{p.name: p / "dataset.yaml" for p in sorted(CASES.iterdir())}}


def _reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv", keep_default_na=False, na_values=["NA"])


@pytest.mark.parametrize("case", sorted(CODEBOOKS))
def test_matches_r(case):
    codebook: Path = CODEBOOKS[case]
    ref = _reference(case)
    ours = pnitrial_values(codebook, random_slope=(codebook.parent / "random_slope").exists())
    bad = compare(ours, ref)
    assert bad.empty, bad.head(20).to_string()
    assert set(ref["method"]) == {"", "kenward-roger", "satterthwaite", "asymptotic", "ols"}
    for estimand in ("clda|interaction:", "ancova|interaction:", "interaction:"):
        assert ref["name"].str.startswith(estimand).any()


def test_singular_case_df_as_lmertest_and_pbkrtest():
    """At sigma_u = 0 in a complete 2x2 trial, Satterthwaite gives 2(n-2) and KR gives n-2."""
    ref = _reference("singular")
    assert ref.loc[ref["quantity"] == "singular", "value"].item() == 1
    df = ref[(ref["quantity"] == "df") & (ref["name"] == "interaction:post")].set_index("method")["value"]
    assert df["kenward-roger"] == pytest.approx(48)
    assert df["satterthwaite"] == pytest.approx(96, rel=1e-6)


def test_kenward_roger_differs_from_satterthwaite_with_missing_data():
    """Guard against comparing a method with itself: with dropout the two df differ."""
    ref = _reference("demo")
    df = ref[(ref["quantity"] == "df") & (ref["name"] == "interaction:post") & (ref["outcome"] == "oxytocin")]
    kr = df.loc[df["method"] == "kenward-roger", "value"].item()
    satt = df.loc[df["method"] == "satterthwaite", "value"].item()
    assert kr != pytest.approx(satt, rel=1e-4)


def test_btheb_estimands_order_as_published():
    """Pre vs 2 months: ANCOVA -3.95, cLDA -3.93, LMM interaction -3.30 (anchors in the literature)."""
    from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
    from pnitrial.data.codebook import load_codebook
    from pnitrial.data.longframe import build_long_frame

    frame, meta = build_long_frame(load_codebook(CODEBOOKS["btheb"]))
    meta = dataclasses.replace(meta, visits=("pre", "m2"), covariates={})
    res = analyse_outcome(frame[frame["visit"].isin(["pre", "m2"])], meta, "bdi", AnalysisOptions())
    est = {e["estimand"]: e["estimate"] for e in res.effects if e["contrast"] == "interaction:m2"}
    assert est["ancova"] == pytest.approx(-3.95, abs=0.005)
    assert est["clda"] == pytest.approx(-3.93, abs=0.01)
    assert est["lmm"] == pytest.approx(-3.30, abs=0.01)
