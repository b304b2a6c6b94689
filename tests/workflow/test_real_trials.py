"""The full plan on real public trials (tests/reference/cases): integer outcomes, 3 to 19 visits,
monotone and intermittent dropout, an arm of four, no healthy group, categorical covariates.

Each trial runs through Snakemake with the default configuration (re-randomisations and bootstrap
resamples reduced to keep the suite short); every table is written, no analysis fails, no log holds
a traceback, no identifier reaches an output, and the written primary effects equal the committed
lmerTest/pbkrtest references (tests/reference/expected/<case>.csv) as the numeric output policy
writes them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run

from pnitrial.report.precision import round_at

pytestmark = pytest.mark.slow  # full Snakemake runs: `pytest -m slow` runs them (skipped by default)

CASES = ROOT / "tests" / "reference" / "cases"
REAL = ("btheb", "chickweight", "bodyweight", "milk", "dietox", "fdd")


@pytest.mark.parametrize("case", REAL)
def test_full_plan_on_a_real_trial(case, tmp_path):
    shutil.copytree(CASES / case, tmp_path / "data")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    cfg_path = tmp_path / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(dataset="data/dataset.yaml", permutation={"rerandomisations": 1000})
    cfg["mediation"]["bootstrap"] = 200
    cfg["model"]["covariance"] = "random-intercept"  # compared with lmerTest; the MMRM default below
    cfg_path.write_text(yaml.safe_dump(cfg))
    res = run(tmp_path, "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    results = tmp_path / "results"
    tables = results / "tables"
    for name in ("effects", "fits", "emmeans", "sensitivity", "diagnostics", "permutation", "effect_sizes"):
        assert (tables / f"{name}.csv").stat().st_size > 0
    fits = pd.read_csv(tables / "fits.csv")
    assert fits["status"].isin(["ok", "singular"]).all(), fits[["outcome", "estimand", "status", "error"]]
    for name in ("sensitivity", "diagnostics", "permutation"):
        col = "status" if "status" in pd.read_csv(tables / f"{name}.csv") else "fit_status"
        statuses = pd.read_csv(tables / f"{name}.csv")[col].dropna()
        assert not statuses.str.startswith("failed").any(), (name, statuses[statuses.str.startswith("failed")])
    logs = "".join(p.read_text() for p in (results / "logs").rglob("*.log"))
    assert "Traceback" not in logs
    ids = set(pd.read_csv(CASES / case / "trial.csv", dtype=str)["participant"])
    for p in results.rglob("*"):
        if p.is_file() and p.suffix in (".csv", ".json", ".html", ".md", ".tex", ".svg"):
            text = p.read_text(errors="replace")
            assert not [i for i in ids if f",{i}," in text or f'"{i}"' in text or f">{i}<" in text], p
    _primary_effects_equal_r(case, pd.read_csv(tables / "effects.csv", dtype={"visit": str}))


def _primary_effects_equal_r(case: str, effects: pd.DataFrame) -> None:
    ref = pd.read_csv(ROOT / "tests" / "reference" / "expected" / f"{case}.csv", keep_default_na=False)
    ref = ref[ref["method"] == "kenward-roger"].set_index(["outcome", "quantity", "name"])["value"]
    clda = effects[(effects["estimand"] == "clda") & (effects["scale"] == "model")]
    assert len(clda) and clda["contrast"].str.startswith("interaction:").all()
    for r in clda.itertuples():
        name = f"clda|{r.contrast}"
        se = round_at(float(ref[(r.outcome, "se", name)]))
        assert r.se == pytest.approx(se, rel=2e-5)
        assert r.estimate == pytest.approx(float(ref[(r.outcome, "estimate", name)]), abs=2e-5 * se, rel=2e-6)
        assert r.df == pytest.approx(float(ref[(r.outcome, "df", name)]), rel=1e-3)
        assert r.p == pytest.approx(float(ref[(r.outcome, "p", name)]), abs=2e-6, rel=2e-5)


def test_corpus_is_documented():
    """Every real trial names its source, its R package and its licence in the codebook."""
    for case in REAL:
        head = (CASES / case / "dataset.yaml").read_text().split("\nname:")[0].lower()
        assert "licen" in head and "package" in head and ("export" in head), case
    assert Path(CASES / "fdd" / "trial.csv").exists()


def test_mmrm_on_the_five_visit_trial_equals_r_mmrm(tmp_path):
    """The default (model.covariance: auto) on BtheB (five visits): both mixed models become
    unstructured MMRMs, fits.csv and effects.csv say so, the primary effects equal R's mmrm
    (Kenward-Roger), and model.covariance_compare tabulates mmrm's logLik, AIC and BIC."""
    shutil.copytree(CASES / "btheb", tmp_path / "data")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    cfg_path = tmp_path / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    assert cfg["model"]["covariance"] == "auto"
    cfg.update(dataset="data/dataset.yaml", permutation={"rerandomisations": 200})
    cfg["model"]["covariance_compare"] = ["us", "toeph", "ar1h", "cs", "ad"]
    cfg["mediation"]["bootstrap"] = 200
    cfg_path.write_text(yaml.safe_dump(cfg))
    res = run(tmp_path, "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    tables = tmp_path / "results" / "tables"
    fits = pd.read_csv(tables / "fits.csv")
    mixed = fits[fits["estimand"].isin(["lmm", "clda"])]
    assert (mixed["covariance"] == "us").all() and (mixed["status"] == "ok").all()
    assert mixed["positive_definite"].all() and mixed[["loglik", "aic", "bic"]].notna().all().all()
    ref = pd.read_csv(ROOT / "tests" / "reference" / "expected" / "mmrm" / "btheb.csv", keep_default_na=False)
    ref = ref[(ref["structure"] == "us") & (ref["method"] == "Kenward-Roger")]
    ref = ref.set_index(["outcome", "quantity", "name"])["value"].astype(float)
    eff = pd.read_csv(tables / "effects.csv", dtype={"visit": str})
    prim = eff[eff["primary"] & (eff["scale"] == "model")]
    assert len(prim) == 4 and (prim["covariance"] == "us").all()
    for r in prim.itertuples():
        name = f"clda|{r.contrast}"
        se = ref[(r.outcome, "se", name)]
        assert r.estimate == pytest.approx(ref[(r.outcome, "estimate", name)], abs=2e-5 * se)
        assert r.se == pytest.approx(se, rel=2e-5)
        assert r.df == pytest.approx(ref[(r.outcome, "df", name)], rel=1e-3)
        assert r.p == pytest.approx(ref[(r.outcome, "p", name)], abs=2e-6)
    compared = pd.read_csv(tables / "covariance_compare.csv")
    assert len(compared) == 2 * 5 and (compared["status"] == "ok").all() and (compared["criterion"] == "REML").all()
    allref = pd.read_csv(ROOT / "tests" / "reference" / "expected" / "mmrm" / "btheb.csv", keep_default_na=False)
    allref = allref[allref["method"] == "Kenward-Roger"].set_index(["estimand", "structure", "quantity"])["value"]
    for r in compared.itertuples():
        for q in ("loglik", "aic", "bic"):
            # fits tables carry six significant digits (report.precision); the library matches to 1e-8
            assert getattr(r, q) == pytest.approx(float(allref[(r.estimand, r.structure, q)]), rel=1e-5)
    for _, g in compared.groupby("estimand"):
        assert g["best_aic"].sum() == 1 and g.loc[g["best_aic"], "delta_aic"].iloc[0] == 0
        assert (g["delta_bic"] >= 0).all()
    summary = (tmp_path / "results" / "summary.html").read_text()
    assert "Covariance structures compared" in summary and "unstructured (us)" in summary
