"""p-value adjustment, Welch t and Hedges g against base R (tests/reference/simple_reference.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE

from pnitrial.analyses.baseline import baseline_vs_healthy
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.multiplicity import adjust

REF = pd.read_csv(REFERENCE / "simple.csv", keep_default_na=False, na_values=["NA"])


@pytest.mark.parametrize("method", ["bh", "by", "holm"])
def test_p_adjust_matches_r(method):
    p = np.array([0.01, 0.04, 0.04, 0.2, 0.003, np.nan, 0.5, 0.049, 0.9])
    ref = REF[REF["quantity"] == f"p_adjust_{method}"].sort_values("name", key=lambda s: s.astype(int))
    np.testing.assert_allclose(adjust(p, method), ref["value"].to_numpy(dtype=float), rtol=1e-10, atol=0)


def test_unknown_adjustment_is_refused():
    with pytest.raises(ValueError, match="unknown multiplicity method"):
        adjust(np.array([0.1]), "bonferroni-ish")


def test_baseline_vs_healthy_matches_r():
    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    ours = baseline_vs_healthy(frame, meta).set_index("outcome")
    ref = REF[REF["outcome"] != ""]
    assert len(ref) == 9 * len(meta.outcomes)
    for r in ref.itertuples():
        got = ours.loc[r.outcome, r.quantity]
        tol = 1e-6 if r.quantity == "p" else 1e-8
        assert got == pytest.approx(float(r.value), rel=1e-7, abs=tol), (r.outcome, r.quantity)
