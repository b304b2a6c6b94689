"""Diagnostics against lme4 (tests/reference/diagnostics_reference.R): fitted, residuals, ranef, Cook's distance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from parity import REFERENCE

from pnitrial.analyses.diagnostics import outcome_diagnostics
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.models.design import trial_rows
from pnitrial.report.figures.diagnostics import diagnostic_panels
from pnitrial.report.figures.style import failed_panel

REF = pd.read_csv(REFERENCE / "diagnostics.csv", keep_default_na=False, na_values=["NA"])


@pytest.fixture(scope="module")
def demo():
    return build_long_frame(load_codebook(DEMO / "dataset.yaml"))


def _ref(key: str, quantity: str) -> pd.DataFrame:
    return REF[(REF["outcome"] == key) & (REF["quantity"] == quantity)]


@pytest.mark.parametrize("key", ["oxytocin", "bdi"])
def test_residuals_random_effects_and_cooks_distance_match_lme4(demo, key):
    frame, meta = demo
    table, arrays = outcome_diagnostics(frame, meta, key, "clda")
    scale = float(np.abs(_ref(key, "fitted")["value"]).max())
    ref_fit = _ref(key, "fitted")["value"].to_numpy()
    ref_res = _ref(key, "residual")["value"].to_numpy()
    order = _order(frame, meta, key)
    np.testing.assert_allclose(arrays["fitted"], ref_fit[order], rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(arrays["residuals"], ref_res[order], rtol=0, atol=1e-7 * scale)
    ref_b = _ref(key, "ranef").set_index("participant")["value"]
    ref_d = _ref(key, "cooks_distance").set_index("participant")["value"]
    ref_c = _ref(key, "interaction_change").set_index("participant")["value"]
    pids = _participants(frame, meta, key)
    np.testing.assert_allclose(arrays["random_effects"][:, 0], ref_b.loc[pids], rtol=0, atol=1e-7 * scale)
    # a distance is quadratic in a refit's small shift of beta, so small ones carry both optimisers'
    # tolerances: compare on the scale of the largest distance
    tol = 1e-6 * float(ref_d.max())
    np.testing.assert_allclose(table["cooks_distance"], np.sort(ref_d.to_numpy())[::-1], rtol=1e-5, atol=tol)
    np.testing.assert_allclose(arrays["cooks"], ref_d.loc[pids], rtol=1e-5, atol=tol)
    by_rank = ref_c.loc[pids].to_numpy()[np.argsort(-arrays["cooks"], kind="stable")]
    np.testing.assert_allclose(table["interaction_change"], by_rank, rtol=1e-5, atol=1e-6 * float(ref_c.abs().max()))
    assert (table["influential"] == (table["cooks_distance"] > 4 / len(pids))).all()
    assert (table["rank"] == np.arange(1, len(pids) + 1)).all()


def _participants(frame, meta, key):
    """The participant codes of the raw table, in the design's order (test-side mapping only)."""
    raw = pd.read_csv(DEMO / "trial.csv", dtype=str)
    rows = trial_rows(frame, key, meta.covariates)
    mapping = _pid_map(frame, raw)
    return [mapping[p] for p in rows["pid"].drop_duplicates()]


def _pid_map(frame, raw):
    # base_rows numbers participants 1, 2, ... in order of first appearance in the table
    codes = raw["participant"].str.strip().drop_duplicates().tolist()
    return {i + 1: c for i, c in enumerate(codes)}


def _order(frame, meta, key):
    """Positions of the design rows in R's row order (table order of the reference rows)."""
    ref = _ref(key, "fitted")
    pos = {(p, v): i for i, (p, v) in enumerate(zip(ref["participant"], ref["visit"], strict=True))}
    raw = pd.read_csv(DEMO / "trial.csv", dtype=str)
    mapping = _pid_map(frame, raw)
    rows = trial_rows(frame, key, meta.covariates)
    return np.array([pos[(mapping[p], v)] for p, v in zip(rows["pid"], rows["visit"], strict=True)])


def test_no_identifier_in_the_table(demo):
    frame, meta = demo
    table, _ = outcome_diagnostics(frame, meta, "il6", "lmm")
    assert list(table.columns[:3]) == ["outcome", "estimand", "rank"] and "pid" not in table
    assert set(table["estimand"]) == {"lmm"} and set(table["arm"]) == {"intervention", "control"}


def test_a_failed_fit_is_a_row_and_a_figure(demo):
    frame, meta = demo
    only_baseline = frame[~((frame["outcome"] == "il6") & (frame["visit"] != meta.visits[0]))]
    table, arrays = outcome_diagnostics(only_baseline, meta, "il6", "clda")
    assert arrays is None and len(table) == 1 and table["fit_status"].iloc[0].startswith("failed:")
    assert failed_panel("IL-6", table["fit_status"].iloc[0]) is not None


def test_figure_has_four_panels(demo):
    frame, meta = demo
    _, arrays = outcome_diagnostics(frame, meta, "bdi", "clda")
    fig = diagnostic_panels("BDI-II", **arrays)
    assert len(fig.axes) == 4
