"""The Snakemake workflow end to end on the small .test configuration, in temporary directories."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import EXCLUDED, ROOT, SNAKEMAKE, compile_latex, digest, run

from pnitrial.analyses.associations import associations
from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.inference.multiplicity import adjust
from pnitrial.report.precision import round_frame

pytestmark = pytest.mark.slow  # full Snakemake runs: `pytest -m slow` runs them (skipped by default)


def test_all_outputs_and_numbers_match_the_library(completed):
    tables = completed / "results" / "tables"
    names = ("effects", "emmeans", "fits", "anova", "lod_counts", "baseline_vs_healthy", "table1")
    for name in (*names, "effect_sizes", "associations", "sensitivity", "diagnostics", "mediation"):
        assert (tables / f"{name}.csv").stat().st_size > 0
    for ext in ("md", "tex", "html"):
        assert (tables / f"effects.{ext}").exists() and (tables / f"table1.{ext}").exists()
    for outcome in ("oxytocin", "il6", "bdi"):
        assert (completed / "results" / "figures" / "trajectory" / f"{outcome}.svg").exists()
    assert (completed / "results" / "figures" / "associations.svg").exists()
    assert (completed / "results" / "figures" / "mediation.svg").exists()
    for outcome in ("oxytocin", "il6", "bdi"):
        assert (completed / "results" / "figures" / "sensitivity" / f"{outcome}.png").exists()
        assert (completed / "results" / "figures" / "diagnostics" / f"{outcome}.svg").exists()
    eff = pd.read_csv(tables / "effects.csv")
    frame, meta = build_long_frame(load_codebook(completed / "data" / "dataset.yaml"))
    # the written numbers are the library's, rounded once by the numeric output policy
    direct = round_frame(pd.DataFrame(analyse_outcome(frame, meta, "oxytocin", AnalysisOptions(censored=True)).effects))
    for d in direct.to_dict("records"):
        row = eff[
            (eff["outcome"] == "oxytocin")
            & (eff["estimand"] == d["estimand"])
            & (eff["contrast"] == d["contrast"])
            & (eff["scale"] == d["scale"])
        ]
        assert row["estimate"].item() == d["estimate"]
        assert row["p"].item() == d["p"]
    # lod.method censored: oxytocin has a below-LOD value, so its censored cLDA is primary
    primary = eff[eff["primary"]].groupby("outcome")["estimand"].first().to_dict()
    assert primary == {"oxytocin": "clda_censored", "il6": "clda", "bdi": "clda"}
    assert set(pd.read_csv(tables / "fits.csv")["status"]) <= {"ok", "singular"}
    perm = pd.read_csv(tables / "permutation.csv")
    assert sorted(perm["outcome"]) == ["bdi", "il6", "oxytocin"] and (perm["rerandomisations_fitted"] == 2000).all()
    assert perm["p_model"].notna().all() and perm["p_permutation"].between(1 / 2001, 1).all()
    prim = eff[eff["primary"] & (eff["scale"] == "model")].set_index("outcome")
    clda = eff[(eff["estimand"] == "clda") & (eff["scale"] == "model")].set_index("outcome")
    assert (perm.set_index("outcome")["p_model"] == clda.loc[perm["outcome"], "p"]).all()
    for _fam, g in perm.groupby("family"):  # BH within the codebook's families
        assert g["p_permutation_adjusted"].to_numpy() == pytest.approx(
            adjust(g["p_permutation"].to_numpy(), "bh"), rel=1e-5
        )
    assert set(perm["p_adjust_method"]) == {"bh"}
    assoc = pd.read_csv(tables / "associations.csv")
    direct_assoc = associations(frame, meta, "biomarker", "clinical", "bh")
    assert (assoc["r"] == round_frame(direct_assoc)["r"]).all()
    sens = pd.read_csv(tables / "sensitivity.csv", dtype={"visit": str})
    first = sens.groupby("outcome", sort=False).head(1).set_index("outcome")
    assert (first["analysis"] == "primary (all available data)").all()
    assert first["estimate"].to_numpy() == pytest.approx(prim.loc[first.index, "estimate"].to_numpy(), rel=1e-5)
    assert sens["analysis"].str.startswith("Hodges-Lehmann").sum() == 3
    med = pd.read_csv(tables / "mediation.csv")
    assert set(med["outcome"]) == {"bdi"} and (med["status"] == "ok").all() and (med["bootstrap"] == 500).all()
    diag = pd.read_csv(tables / "diagnostics.csv")
    assert (diag.groupby("outcome")["rank"].min() == 1).all() and (diag["fit_status"] == "ok").all()
    sizes = pd.read_csv(tables / "effect_sizes.csv")
    std = sizes[sizes["effect_size"] == "standardised difference"].set_index("outcome")
    assert (std["value"] * std["denominator_sd"]).to_numpy() == pytest.approx(prim.loc[std.index, "estimate"], rel=2e-5)


def test_summary_page(completed):
    page = (completed / "results" / "summary.html").read_text()
    for text in (
        "Primary estimand</th><td>cLDA",
        "Denominator df</th><td>Kenward-Roger (adjusted covariance and df; pbkrtest)",
        "Multiplicity</th><td>Benjamini-Hochberg within each outcome family and visit",
        "constrained longitudinal analysis (cLDA) keeps baseline in the response",
        '<img style="max-width:100%" alt="Intervention effects',  # the forest plot, inline
        'alt="Trajectory of BDI-II total"',
        "Intervention effects",
        "cLDA (primary)",
        "All models converged",
        "<h2>Randomisation inference</h2>",
        "re-randomised 2000 times",
        "<h2>Effect sizes</h2>",
        "<h2>Biomarker-symptom associations</h2>",
        "<h2>Sensitivity</h2>",
        "<h2>Diagnostics</h2>",
        "<h2>Mediation</h2>",
        "<h2>Missing data: reference-based imputation</h2>",
        'alt="MAR tipping point',
    ):
        assert text in page, text
    # labels, not keys, in every section; p in APA style; effects to three significant digits
    body = re.sub(r'src="data:[^"]*"', "", page)
    assert ">bdi<" not in body and ">oxytocin<" not in body
    assert re.search(r"<td>(\.\d{3}|&lt; \.001)</td>", body)


def test_no_figure_or_python_warning_in_any_rule_log(completed, panel_run):
    """Figures whose texts overlap or leave the canvas, and matplotlib's or numpy's warnings, reach the logs."""
    for results in (completed / "results", panel_run / "results"):
        for path in sorted((results / "logs").rglob("*.log")):
            text = path.read_text()
            assert not re.search(r"^WARNING (figure |.*Warning: )", text, re.M), (path, text[-2000:])


def test_no_participant_identifier_anywhere(completed):
    ids = set(pd.read_csv(completed / "data" / "trial.csv")["participant"])
    for p in (completed / "results").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            leaked = [i for i in ids if i.encode() in data]
            assert not leaked, f"{p} shows identifiers"


def test_results_identical_with_one_core_elsewhere_and_one_job_per_outcome(completed, tmp_path):
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    # the cluster's job layout (scatter.jobs: per-outcome) against the workstation's (per-stage)
    res = run(tmp_path, "--cores", "1", "--config", "scatter={jobs: per-outcome}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "results" / "logs" / "fit_outcome" / "bdi.log").exists()
    assert (completed / "results" / "logs" / "fit_outcomes.log").exists()
    ours, theirs = digest(tmp_path / "results"), digest(completed / "results")
    # provenance.json records the configuration, scatter.jobs included; it is not in the manifest
    assert ours.pop("provenance.json") != theirs.pop("provenance.json")
    assert ours == theirs


def test_snakemake_report(completed):
    res = run(completed, "--report", "report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (completed / "report.html").read_text(errors="replace")
    assert "Intervention effects" in html and "Trajectories" in html
    # the landing text follows the resolved config: the cLDA primary, the censored model, KR df, BH
    for text in ("constrained longitudinal data analysis", "left-censored (Tobit)", "Kenward", "Benjamini"):
        assert text in html, text


def test_bad_table_stops_with_clear_error_and_no_outputs(tmp_path):
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    table = tmp_path / "data" / "trial.csv"
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    df.loc[6, "bdi"] = "99"
    df.to_csv(table, index=False)
    before = table.read_bytes()
    res = run(tmp_path, "--cores", "2")
    assert res.returncode != 0
    assert "column 'bdi', row 7 (file line 8): expected a score within [0, 63]" in res.stderr
    assert table.read_bytes() == before
    left = [
        p
        for p in (tmp_path / "results").rglob("*")
        if p.is_file() and p.relative_to(tmp_path / "results").parts[0] not in EXCLUDED
    ]
    assert left == []


def test_bad_codebook_stops_before_any_job(tmp_path):
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    cb = tmp_path / "data" / "dataset.yaml"
    cb.write_text(cb.read_text().replace("transform: none", "transform: cube"))
    res = run(tmp_path, "--cores", "2")
    assert res.returncode != 0 and "cube" in res.stderr
    assert not (tmp_path / "results").exists()


def test_bad_config_is_refused(tmp_path):
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    res = run(tmp_path, "--cores", "1", "--config", "inference={'ddf': 'wald'}")
    assert res.returncode != 0 and "wald" in res.stderr


def test_manifest_matches_committed_expectation_and_verify(completed):
    from pnitrial.report.provenance import read_manifest

    manifest = read_manifest(completed / "results" / "MANIFEST.sha256")
    assert list(manifest) == sorted(manifest)
    assert not any(k.startswith(("logs/", "benchmarks/")) or k == "provenance.json" for k in manifest)
    assert "tables/effects.csv" in manifest and "figures/forest.svg" in manifest
    res = run(completed, "--cores", "1", "verify")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "byte-identical" in res.stderr


def test_verify_names_the_file_that_differs(completed, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(completed, work, ignore=shutil.ignore_patterns(".snakemake"))
    expected = work / "expected" / "MANIFEST.sha256"
    lines = expected.read_text().splitlines()
    lines = [("0" * 64 + line[64:]) if line.endswith("tables/anova.csv") else line for line in lines]
    expected.write_text("\n".join(lines) + "\n")
    res = run(work, "--cores", "1", "verify")
    assert res.returncode != 0
    assert "differs: tables/anova.csv" in res.stderr


def test_provenance(completed):
    import json

    from pnitrial.report.provenance import sha256

    prov = json.loads((completed / "results" / "provenance.json").read_text())
    assert prov["inputs"]["table"]["sha256"] == sha256(completed / "data" / "trial.csv")
    assert prov["config"]["inference"]["ddf"] == "kenward-roger" and prov["seeds"]["seed"] == 7
    assert prov["packages"]["numpy"] and prov["python"]


def test_killed_run_recovers_to_the_same_bytes(completed, tmp_path):
    import signal
    import time

    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    proc = subprocess.Popen(
        [*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "1"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    models = tmp_path / "results" / "models"
    deadline = time.time() + 300
    while time.time() < deadline and not (models.exists() and any(models.glob("*.json"))):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its running job, mid-run
    proc.wait()
    assert not (tmp_path / "results" / "MANIFEST.sha256").exists()
    assert run(tmp_path, "--unlock").returncode == 0
    res = run(tmp_path, "--cores", "2", "--rerun-incomplete")
    assert res.returncode == 0, res.stderr[-3000:]
    assert digest(tmp_path / "results") == digest(completed / "results")


def test_trial_without_healthy_controls(tmp_path):
    """No healthy arm: no patients-vs-healthy table or figure, and the summary says why."""
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    table = tmp_path / "data" / "trial.csv"
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    df[df["arm"] != "healthy"].to_csv(table, index=False)
    cb = tmp_path / "data" / "dataset.yaml"
    raw = yaml.safe_load(cb.read_text())
    raw["arms"].pop("healthy")
    cb.write_text(yaml.safe_dump(raw, sort_keys=False))
    res = run(tmp_path, "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    results = tmp_path / "results"
    assert not list(results.rglob("baseline_vs_healthy*"))
    assert "no healthy control group" in (results / "summary.html").read_text()
    sizes = pd.read_csv(results / "tables" / "effect_sizes.csv")
    assert set(sizes["effect_size"]) == {"standardised difference"}
    logs = "".join(p.read_text() for p in (results / "logs").rglob("*.log"))
    assert "Warning" not in logs and "Traceback" not in logs


def test_every_latex_table_compiles(completed, panel_run, tmp_path):
    """Issue 16: every .tex the workflow writes compiles with pdflatex in a minimal document."""
    tables = sorted((completed / "results" / "tables").glob("*.tex"))
    tables += sorted((panel_run / "results" / "tables").glob("*.tex"))
    assert len(tables) >= 3
    res = compile_latex(tables, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
