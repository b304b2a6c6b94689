"""Every number pnitrial reports equals R (lme4 + lmerTest + pbkrtest + emmeans) on the same data.

Reference CSVs are written by tests/reference/lmer_reference.R (see run_all.sh); CI re-runs
the R scripts and checks the committed CSVs still match what R produces.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE, compare, pnitrial_values


def _reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv", keep_default_na=False, na_values=["NA"])


def test_bundled_trial_matches_r():
    ref = _reference("demo")
    ours = pnitrial_values(DEMO / "dataset.yaml")
    bad = compare(ours, ref)
    assert bad.empty, bad.head(20).to_string()
    # the comparison covers every method and quantity
    assert set(ref["method"]) == {"", "kenward-roger", "satterthwaite", "asymptotic"}
    assert len(ref) == 2720


def test_kenward_roger_differs_from_satterthwaite_with_missing_data():
    """Guard against comparing a method with itself: with dropout the two df differ."""
    ref = _reference("demo")
    df = ref[(ref["quantity"] == "df") & (ref["name"] == "interaction:post") & (ref["outcome"] == "oxytocin")]
    kr = df.loc[df["method"] == "kenward-roger", "value"].item()
    satt = df.loc[df["method"] == "satterthwaite", "value"].item()
    assert kr != pytest.approx(satt, rel=1e-4)
