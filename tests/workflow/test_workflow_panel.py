"""The workflow on a trial with a 120-analyte panel (.test/config/panel.yaml): scatter, gather, figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import EXCLUDED, ROOT, digest, run

from pnitrial.analyses.estimands import AnalysisOptions
from pnitrial.analyses.panel import analyse_panel
from pnitrial.data.codebook import load_codebook
from pnitrial.data.panel import build_panel_frame
from pnitrial.data.trial import Trial
from pnitrial.report.precision import round_frame

pytestmark = pytest.mark.slow  # full Snakemake runs: `pytest -m slow` runs them (skipped by default)


def _copy(dst: Path) -> Path:
    shutil.copytree(ROOT / ".test", dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake"))
    return dst


def _config(work: Path, **changes) -> Path:
    path = work / "config" / "panel.yaml"
    raw = yaml.safe_load(path.read_text())
    for k, v in changes.items():
        raw[k] = dict(raw.get(k, {}), **v)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_panel_outputs_and_numbers_match_the_library(panel_run):
    res = panel_run / "results"
    for name in ("panel_effects.csv", "panel_fits.csv", "panel_top.csv", "panel_top.md", "panel_top.html"):
        assert (res / "tables" / name).stat().st_size > 0
    for ext in ("png", "svg"):
        assert (res / "figures" / f"panel_volcano.{ext}").exists() and (res / "figures" / f"panel_top.{ext}").exists()
    assert sorted(p.name for p in (res / "panel" / "chunks").glob("*.effects.csv")) == [
        f"{i}.effects.csv" for i in range(3)
    ]
    assert not list((res / "figures" / "trajectory").glob("P0*"))  # no per-analyte figures
    eff = pd.read_csv(res / "tables" / "panel_effects.csv", dtype={"visit": str})
    cb = load_codebook(panel_run / "panel" / "dataset.yaml")
    rows, values, pmeta = build_panel_frame(cb)
    meta = Trial.read(res / "data" / "meta.json")
    direct, _ = analyse_panel(rows, values, meta, pmeta, AnalysisOptions())
    assert len(eff) == len(direct) == 120 * 6
    direct = round_frame(direct)  # written as the numeric output policy rounds them
    for col in ("estimate", "df", "p"):
        np.testing.assert_array_equal(eff[col], direct[col])
    top = pd.read_csv(res / "tables" / "panel_top.csv")
    assert len(top) == 15 and top["p"].is_monotonic_increasing
    page = (res / "summary.html").read_text()
    assert "Simulated proteomic panel (120 analytes)" in page and "Top analytes" in page
    manifest = (res / "MANIFEST.sha256").read_text()
    assert "tables/panel_effects.csv" in manifest and "panel/chunks" not in manifest


def test_panel_tables_and_figures_do_not_depend_on_chunks(panel_run, tmp_path):
    work = _copy(tmp_path / "one")
    res = run(work, "--configfile", str(_config(work, scatter={"chunks": 1})), "--cores", "1")
    assert res.returncode == 0, res.stderr[-3000:]

    def gathered(d: Path) -> dict[str, str]:
        # chunk files differ by design; provenance.json records the config, chunks included
        return {k: v for k, v in digest(d / "results").items() if not k.startswith("panel/") and k != "provenance.json"}

    assert gathered(work) == gathered(panel_run)


def test_panel_run_verifies_against_committed_manifest(panel_run):
    res = run(panel_run, "--configfile", str(panel_run / "config" / "panel.yaml"), "--cores", "1", "verify")
    assert res.returncode == 0, res.stderr[-3000:]


def test_no_participant_identifier_in_panel_outputs(panel_run):
    ids = set(pd.read_csv(panel_run / "panel" / "trial.csv")["participant"])
    for p in (panel_run / "results").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert not [i for i in ids if i.encode() in data], f"{p} shows identifiers"


def test_bad_panel_stops_with_clear_error_and_no_panel_outputs(tmp_path):
    work = _copy(tmp_path)
    table = work / "panel" / "panel.csv"
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    df.loc[9, "P0042"] = "n.d."
    df.to_csv(table, index=False)
    before = table.read_bytes()
    res = run(work, "--configfile", str(work / "config" / "panel.yaml"), "--cores", "2")
    assert res.returncode != 0
    assert "panel.csv: column 'P0042', row 10 (file line 11): expected a number or an empty cell" in res.stderr
    assert table.read_bytes() == before
    results = work / "results"
    left = [p for p in results.rglob("*") if p.is_file() and p.relative_to(results).parts[0] not in EXCLUDED]
    assert not [p for p in left if "panel" in p.name or p.parent.name == "chunks"]
    assert not (results / "MANIFEST.sha256").exists()


def test_panel_only_trial_runs_the_panel_alone(tmp_path):
    """A proteomics-only codebook (panel:, no outcomes:) runs the plan on the panel alone."""
    work = _copy(tmp_path)
    cb = work / "panel" / "dataset.yaml"
    raw = yaml.safe_load(cb.read_text())
    raw.pop("outcomes")
    cb.write_text(yaml.safe_dump(raw, sort_keys=False))
    res = run(work, "--configfile", str(work / "config" / "panel.yaml"), "--cores", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    tables = {p.name for p in (work / "results" / "tables").iterdir()}
    assert {"panel_effects.csv", "panel_top.csv", "table1.csv"} <= tables and "effects.csv" not in tables
    assert "no trial outcomes: the analysis is the panel's alone" in (work / "results" / "summary.html").read_text()
