"""End-to-end `snakemake` wall time and peak memory: the demo trial and a simulated 3,000-analyte panel.

Each run starts from an empty results/ in a temporary directory (nothing cached), with the
profile's core count. Peak memory is the largest max_rss over the jobs' benchmark files.
The panel trial has 50 patients and 15 healthy controls, two visits, the 16 clinical outcomes and
biomarkers of the demo, and N analytes (10% with a true effect), fitted in scatter.chunks jobs.

Usage: python benchmarks/workflow_time.py [--analytes 3000] [--chunks 4] [--cores 2] [--skip-demo]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from pnitrial.data.simulate import write_panel_trial

ROOT = Path(__file__).resolve().parents[1]


def run(work: Path, cores: int, configfile: Path | None = None) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work)]
    cmd += ["--cores", str(cores), "--quiet", "all"]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    wall = time.perf_counter() - t0
    rss, jobs = 0.0, 0
    for tsv in (work / "results" / "benchmarks").rglob("*.tsv"):
        rss = max(rss, float(pd.read_csv(tsv, sep="\t")["max_rss"].max()))
        jobs += 1
    return wall, rss, jobs


def main(analytes: int, chunks: int, cores: int, skip_demo: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not skip_demo:
            demo = tmp / "demo"
            shutil.copytree(ROOT / "config", demo / "config")
            shutil.copytree(ROOT / "data", demo / "data")
            wall, rss, _ = run(demo, cores)
            print(f"demo trial (16 outcomes): {wall:.1f} s wall on {cores} cores; peak job memory {rss:.0f} MB")
        work = tmp / "panel"
        write_panel_trial(work / "data", seed=20261123, n_analytes=analytes, fraction=0.1)
        shutil.copytree(ROOT / "config", work / "config")
        cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
        cfg["dataset"] = "data/dataset.yaml"
        cfg["scatter"] = {"chunks": chunks}
        cfg["verify"] = {"expected": "none"}
        (work / "config" / "panel.yaml").write_text(yaml.safe_dump(cfg))
        wall, rss, jobs = run(work, cores, work / "config" / "panel.yaml")
        per = sorted((work / "results" / "benchmarks" / "fit_panel_chunk").glob("*.tsv"))
        chunk_s = [float(pd.read_csv(p, sep="\t")["s"].iloc[0]) for p in per]
        print(
            f"{analytes}-analyte panel + 16 outcomes: {wall:.1f} s wall on {cores} cores, {chunks} chunks "
            f"(chunk jobs {min(chunk_s):.1f}-{max(chunk_s):.1f} s each); peak job memory {rss:.0f} MB"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--analytes", type=int, default=3000)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--skip-demo", action="store_true")
    a = ap.parse_args()
    main(a.analytes, a.chunks, a.cores, a.skip_demo)
