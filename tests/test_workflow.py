"""The Snakemake workflow end to end on the small .test configuration, in temporary directories."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from pnitrial.analysis import AnalysisOptions, analyse_outcome
from pnitrial.codebook import load_codebook
from pnitrial.longframe import build_long_frame

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
EXCLUDED = ("logs", "benchmarks")


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, env=env, timeout=900
    )


def digest(results: Path) -> dict[str, str]:
    out = {}
    for p in sorted(results.rglob("*")):
        rel = p.relative_to(results)
        if p.is_file() and rel.parts[0] not in EXCLUDED:
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def completed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("run1")
    shutil.copytree(ROOT / ".test", work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake"))
    res = run(work, "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def test_all_outputs_and_numbers_match_the_library(completed):
    tables = completed / "results" / "tables"
    for name in ("effects", "emmeans", "fits", "anova", "lod_counts", "baseline_vs_healthy", "table1"):
        assert (tables / f"{name}.csv").stat().st_size > 0
    for ext in ("md", "tex", "html"):
        assert (tables / f"effects.{ext}").exists() and (tables / f"table1.{ext}").exists()
    for outcome in ("oxytocin", "il6", "bdi"):
        assert (completed / "results" / "figures" / "trajectory" / f"{outcome}.svg").exists()
    eff = pd.read_csv(tables / "effects.csv")
    frame, meta = build_long_frame(load_codebook(completed / "data" / "dataset.yaml"))
    direct = analyse_outcome(frame, meta, "oxytocin", AnalysisOptions()).effects
    for d in direct:
        row = eff[
            (eff["outcome"] == "oxytocin")
            & (eff["estimand"] == d["estimand"])
            & (eff["contrast"] == d["contrast"])
            & (eff["scale"] == d["scale"])
        ]
        assert row["estimate"].item() == pytest.approx(d["estimate"], rel=1e-9)
        assert row["p"].item() == pytest.approx(d["p"], rel=1e-9)
    assert eff.loc[eff["primary"], "estimand"].unique().tolist() == ["clda"]
    assert set(pd.read_csv(tables / "fits.csv")["status"]) <= {"ok", "singular"}


def test_no_participant_identifier_anywhere(completed):
    ids = set(pd.read_csv(completed / "data" / "trial.csv")["participant"])
    for p in (completed / "results").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            leaked = [i for i in ids if i.encode() in data]
            assert not leaked, f"{p} shows identifiers"


def test_results_identical_with_one_core_elsewhere(completed, tmp_path):
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    res = run(tmp_path, "--cores", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert digest(tmp_path / "results") == digest(completed / "results")


def test_snakemake_report(completed):
    res = run(completed, "--report", "report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (completed / "report.html").read_text(errors="replace")
    assert "Intervention effects" in html and "Trajectories" in html


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
