"""Panels: codebook key, validation messages, the pseudonymised panel frame, chunks, simulator, tables."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from pnitrial.analyses.estimands import AnalysisOptions
from pnitrial.analyses.panel import analyse_panel
from pnitrial.data.codebook import load_codebook
from pnitrial.data.panel import build_panel_frame, chunk_analytes
from pnitrial.data.simulate import simulate_panel, simulate_trial
from pnitrial.data.trial import Trial
from pnitrial.errors import ValidationError
from pnitrial.inference.multiplicity import adjust
from pnitrial.report.tables import panel_effects_table, panel_top_table

PANEL = ROOT / ".test" / "panel"


@pytest.fixture
def panel_trial(tmp_path: Path) -> Path:
    dst = tmp_path / "panel"
    shutil.copytree(PANEL, dst)
    return dst / "dataset.yaml"


def _panel(cb: Path) -> pd.DataFrame:
    return pd.read_csv(cb.parent / "panel.csv", dtype=str, keep_default_na=False)


def _problems(cb: Path) -> list[str]:
    with pytest.raises(ValidationError) as err:
        build_panel_frame(load_codebook(cb))
    return err.value.problems


def test_clean_panel_frame_is_pseudonymised_and_aligned(panel_trial):
    before = hashlib.sha256((panel_trial.parent / "panel.csv").read_bytes()).hexdigest()
    rows, values, meta = build_panel_frame(load_codebook(panel_trial))
    assert hashlib.sha256((panel_trial.parent / "panel.csv").read_bytes()).hexdigest() == before
    raw = pd.read_csv(panel_trial.parent / "panel.csv")
    assert values.shape == (len(raw), 120) and meta["analytes"][:2] == ["P0001", "P0002"]
    assert not set(rows.columns) & {"participant"} and rows["pid"].dtype.kind == "i"
    assert list(rows.columns[:4]) == ["pid", "role", "visit", "visit_index"]
    assert rows.equals(rows.sort_values(["pid", "visit_index"]).reset_index(drop=True))
    # same multiset of values per analyte: rows were reordered, never changed
    np.testing.assert_array_equal(np.sort(values[:, 4]), np.sort(raw["P0005"].to_numpy()))
    assert meta["n_missing"] == int(raw.iloc[:, 2:].isna().sum().sum())


def test_non_numeric_cell_names_file_column_and_row(panel_trial):
    df = _panel(panel_trial)
    df.loc[3, "P0007"] = "high"
    df.to_csv(panel_trial.parent / "panel.csv", index=False)
    (msg,) = _problems(panel_trial)
    assert "panel.csv: column 'P0007', row 4 (file line 5): expected a number or an empty cell" in msg
    assert df.loc[3, "participant"] not in msg


def test_rows_without_a_trial_row_are_refused(panel_trial):
    df = _panel(panel_trial)
    df.loc[0, "participant"] = "PNI-999"
    df.loc[1, "visit"] = "followup"
    df.to_csv(panel_trial.parent / "panel.csv", index=False)
    (msg,) = _problems(panel_trial)
    assert "rows 1, 2 (file lines 2, 3): expected a participant and visit that has a row in the trial table" in msg
    assert "PNI-999" not in msg


def test_duplicate_rows_and_empty_keys(panel_trial):
    df = _panel(panel_trial)
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    df.loc[2, "visit"] = ""
    df.to_csv(panel_trial.parent / "panel.csv", index=False)
    text = "\n".join(_problems(panel_trial))
    assert "column 'visit', row 3 (file line 4): expected a value, found an empty cell" in text
    assert "expected one row per participant and visit, found duplicates" in text


def test_missing_listed_analyte_and_log_transform_checks(panel_trial):
    raw = yaml.safe_load(panel_trial.read_text())
    raw["panel"]["analytes"] = ["P0001", "P9999"]
    panel_trial.write_text(yaml.safe_dump(raw))
    (msg,) = _problems(panel_trial)
    assert "missing column 'P9999' (from codebook key panel/analytes)" in msg
    raw["panel"] = dict(raw["panel"], analytes=["P0001", "P0002"], transform="log")
    panel_trial.write_text(yaml.safe_dump(raw))
    df = _panel(panel_trial)
    df.loc[[4, 6], "P0002"] = ["0", "-1.5"]
    df.to_csv(panel_trial.parent / "panel.csv", index=False)
    (msg,) = _problems(panel_trial)
    assert "column 'P0002', rows 5, 7 (file lines 6, 8): expected a positive value (panel transform is log)" in msg


def test_analyte_named_like_an_outcome_is_refused(panel_trial):
    raw = yaml.safe_load(panel_trial.read_text())
    raw["panel"]["analytes"] = ["bdi"]
    panel_trial.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="panel/analytes': names also used as outcome keys"):
        load_codebook(panel_trial)


def test_unknown_panel_key_is_a_schema_error(panel_trial):
    raw = yaml.safe_load(panel_trial.read_text())
    raw["panel"]["normalise"] = "quantile"
    panel_trial.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="key 'panel'"):
        load_codebook(panel_trial)


def test_too_many_bad_columns_are_summarised(panel_trial):
    df = _panel(panel_trial)
    df.iloc[0, 2:30] = "x"
    df.to_csv(panel_trial.parent / "panel.csv", index=False)
    msgs = _problems(panel_trial)
    assert len(msgs) == 11 and msgs[-1].endswith("18 more analyte columns with the same problem")


@pytest.mark.parametrize("n,chunks", [(120, 3), (7, 3), (5, 5), (3000, 16)])
def test_chunks_cover_every_analyte_once_in_order(n, chunks):
    got = np.concatenate([chunk_analytes(n, chunks, i) for i in range(chunks)])
    np.testing.assert_array_equal(got, np.arange(n))
    sizes = [len(chunk_analytes(n, chunks, i)) for i in range(chunks)]
    assert max(sizes) - min(sizes) <= 1


def test_panel_simulator_is_seeded_and_records_truth():
    table, _, _ = simulate_trial(3, n_patients=30, n_healthy=5)
    a, ta = simulate_panel(table, 200, 0.1, seed=11)
    b, tb = simulate_panel(table, 200, 0.1, seed=11)
    c, _ = simulate_panel(table, 200, 0.1, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert ta["has_effect"].sum() == 20 and (ta.loc[~ta["has_effect"], "interaction"] == 0).all()
    assert list(a.columns[:2]) == ["participant", "visit"] and a.shape == (len(table), 202)
    assert 0.01 < a.iloc[:, 2:].isna().mean().mean() < 0.03
    with pytest.raises(ValueError):
        simulate_panel(table, 10, 1.5, seed=1)


def _panel_inputs(codebook: Path):
    """The codebook, panel rows, values, panel metadata and the trial metadata the panel analysis reads."""
    cb = load_codebook(codebook)
    rows, values, pmeta = build_panel_frame(cb)
    meta = Trial(
        name=cb.name,
        arms={"intervention": cb.intervention, "control": cb.control, "healthy": None},
        visits=cb.visits,
        covariates={"age": {"type": "numeric"}, "sex": {"type": "categorical"}},
    )
    return cb, rows, values, pmeta, meta


def test_panel_recovers_the_simulated_effects(panel_trial):
    """Model-based check of the whole panel path: effects found, nulls mostly not, CIs cover the truth."""
    cb, rows, values, pmeta, meta = _panel_inputs(panel_trial)
    eff, fits = analyse_panel(rows, values, meta, pmeta, AnalysisOptions())
    truth = pd.read_csv(panel_trial.parent / "panel_truth.csv")
    prim = eff[eff["primary"] & (eff["scale"] == "model")].merge(truth, left_on="outcome", right_on="analyte")
    assert len(prim) == 120 and prim["estimand"].eq("clda").all()
    covered = (prim["ci_low"] <= prim["interaction"]) & (prim["interaction"] <= prim["ci_high"])
    assert covered.mean() > 0.85
    assert (prim.loc[~prim["has_effect"], "p"] < 0.05).mean() < 0.15
    assert prim.loc[prim["has_effect"], "p"].median() < 0.05
    assert set(fits["status"]) <= {"ok", "singular"}


def test_panel_fdr_is_across_the_panel_per_estimand_and_visit(panel_trial):
    cb = load_codebook(panel_trial)
    rows, values, pmeta = build_panel_frame(cb)
    meta = Trial("panel", {"intervention": "MBPM", "control": "waitlist", "healthy": None}, ("pre", "post"))
    eff, _ = analyse_panel(rows, values[:, :30], meta, dict(pmeta, analytes=pmeta["analytes"][:30]), AnalysisOptions())
    table = panel_effects_table(eff, "bh")
    for estimand in ("clda", "lmm", "ancova"):
        sel = (table["estimand"] == estimand) & (table["contrast"] == "interaction:post")
        np.testing.assert_allclose(table.loc[sel, "p_fdr"], adjust(table.loc[sel, "p"].to_numpy(), "bh"))
    assert table.loc[~table["contrast"].str.startswith("interaction"), "p_fdr"].isna().all()
    top = panel_top_table(table, 5)
    assert len(top) == 5 and top["p"].is_monotonic_increasing and (top["estimand"] == "clda").all()


def test_an_analyte_that_cannot_be_tested_has_no_p_and_no_fdr(panel_trial):
    """An analyte equal at both visits: a degenerate ANCOVA and no valid mixed model, none of them tested."""
    cb, rows, values, pmeta, meta = _panel_inputs(panel_trial)
    flat = values.copy()
    pre, post = (rows["visit"] == cb.visits[0]).to_numpy(), (rows["visit"] == cb.visits[1]).to_numpy()
    base = dict(zip(rows.loc[pre, "pid"], flat[pre, 0], strict=True))
    flat[post, 0] = rows.loc[post, "pid"].map(base).to_numpy()
    eff, fits = analyse_panel(rows, flat, meta, pmeta, AnalysisOptions())
    first = pmeta["analytes"][0]
    mine = eff[eff["outcome"] == first]
    assert not mine["fit_status"].isin(["ok", "singular"]).any()
    assert mine["p"].isna().all() and mine["ci_low"].isna().all()
    ancova = fits[(fits["outcome"] == first) & (fits["estimand"] == "ancova")]
    assert ancova["error"].str.startswith("degenerate").all()
    adjusted = panel_effects_table(eff, "bh")
    assert adjusted.loc[adjusted["outcome"] == first, "p_fdr"].isna().all()
    others = adjusted[(adjusted["outcome"] != first) & adjusted["contrast"].str.startswith("interaction:")]
    assert others.loc[others["scale"] == "model", "p_fdr"].notna().all()


def test_a_panel_of_five_visits_is_analysed_by_mmrm_as_trial_outcomes_are():
    """model.covariance (auto: us for 3+ visits) applies to panels: each analyte is the MMRM that a
    trial outcome gets (tests/models/test_mmrm.py: equal to R's mmrm), and a linear map of an
    analyte moves its effects by the same map with unchanged df and p."""
    from pnitrial.analyses.estimands import analyse_outcome
    from pnitrial.analyses.panel import wide_from_long
    from pnitrial.data.longframe import build_long_frame

    frame, meta = build_long_frame(load_codebook(ROOT / "tests" / "reference" / "cases" / "btheb" / "dataset.yaml"))
    rows, values = wide_from_long(frame, meta, ["bdi"])
    values = np.column_stack([values[:, 0], 2 * values[:, 0] + 3])
    panel = {"analytes": ["a", "b"], "family": "panel", "transform": "none", "unit": "score"}
    opts = AnalysisOptions(covariance="auto")
    eff, fits = analyse_panel(rows, values, meta.with_outcomes(()), panel, opts)
    mixed = fits[fits["estimand"].isin(["lmm", "clda"])]
    assert (mixed["covariance"] == "us").all() and (mixed["status"] == "ok").all()
    single = pd.DataFrame(analyse_outcome(frame, meta, "bdi", opts).effects)
    key = ["estimand", "contrast", "scale"]
    a = eff[eff["outcome"] == "a"].merge(single, on=key, suffixes=("", "_single"))
    b = eff[eff["outcome"] == "b"].merge(single, on=key, suffixes=("", "_single"))
    assert len(a) == len(single) and (a["covariance"] == a["covariance_single"]).all()
    for c in ("estimate", "se", "df", "p"):
        np.testing.assert_allclose(a[c], a[f"{c}_single"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b["estimate"], 2 * b["estimate_single"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b["df"], b["df_single"], rtol=1e-5)
    np.testing.assert_allclose(b["p"], b["p_single"], rtol=1e-5, atol=1e-10)


def _five_visit_panel(A: int, m: int = 60, T: int = 5, seed: int = 4):
    from pnitrial.data.examples import visit_grid

    rng = np.random.default_rng(seed)
    rows, meta = visit_grid(m, T)
    pid, vi = rows["pid"].to_numpy(), rows["visit_index"].to_numpy()
    chol = np.linalg.cholesky(0.5 + np.diag(np.linspace(0.5, 1.5, T)))
    Y = np.stack([(rng.normal(size=(m, T)) @ chol.T).ravel() + 0.3 * (pid % 2 == 0) * vi for _ in range(A)], axis=1)
    Y[rng.random(Y.shape) < 0.06] = np.nan
    return rows, Y, meta


def _text(values) -> list[str]:
    return ["" if x is None or isinstance(x, float) and np.isnan(x) else str(x) for x in values]


@pytest.mark.parametrize(
    "opts",
    [
        AnalysisOptions(covariance="auto"),
        AnalysisOptions(covariance="toeph", ddf="satterthwaite"),
        AnalysisOptions(covariance="cs", reml=False, ddf="asymptotic"),
    ],
    ids=["us-kr", "toeph-satterthwaite", "cs-ml-z"],
)
@pytest.mark.parametrize("transform", ["none", "log"])
def test_panel_mmrms_fitted_by_column_equal_the_trial_outcome_path(opts, transform):
    """The MMRM panel path (a batch of fits, rows by column) writes the rows of analyse_outcome per
    analyte to 1e-9, including an analyte without values at one visit and one with integer scores."""
    from pnitrial.analyses.panel import _one_at_a_time

    rows, Y, meta = _five_visit_panel(6)
    Y[rows["visit_index"].to_numpy() == 2, 1] = np.nan  # analyte 1 has no value at visit w2
    Y[:, 4] = np.round(Y[:, 4])
    if transform == "log":
        Y = np.exp(Y / 2)
    panel = {"analytes": [f"x{k}" for k in range(6)], "family": "p", "transform": transform, "unit": "u"}
    eff, fits = analyse_panel(rows, Y, meta, panel, opts)
    eff0, fits0 = _one_at_a_time(rows, Y, meta, panel, opts)
    eff0 = eff0[eff.columns]
    assert len(eff) == len(eff0) and len(fits) == len(fits0) and set(fits.columns) == set(fits0.columns)
    for got, want in ((eff, eff0), (fits, fits0[fits.columns])):
        for c in want.columns:
            a, b = got[c].to_numpy(), want[c].to_numpy()
            if c == "gradient_max":  # optimiser noise: both paths converged by lme4's rule
                assert np.nanmax(np.r_[a.astype(float), b.astype(float)]) < 2e-3
            elif c in ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high", "loglik", "aic", "bic") or c in (
                "reml_criterion",
                "ml_deviance",
                "var_residual",
            ):
                np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-12, err_msg=c)
            elif c not in ("statistic_type", "covariance") or c == "covariance" and got is eff:
                assert _text(a) == _text(b), c
    assert set(fits.loc[fits["estimand"] != "ancova", "covariance"]) == {opts.structure(5)}
