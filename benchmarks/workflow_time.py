"""End-to-end wall time and peak memory: the demo against hand-written R and statsmodels scripts, and a panel.

Each pnitrial run starts from an empty results/ in a temporary directory (nothing cached), with the
profile's core count. Peak memory is the largest max_rss over the jobs' benchmark files.

The demo trial is timed as shipped (config's re-randomisations) and with --permutations
re-randomisations, next to `benchmarks/handwritten.R` (lme4 + lmerTest + emmeans: lmm, cLDA and
ANCOVA of every outcome with Kenward-Roger df, and the cLDA permutation test refitting lmer) and
`benchmarks/handwritten_statsmodels.py` (statsmodels MixedLM + pingouin, the same analyses) with
the same number of re-randomisations, all in the same run. Their time at the config's number is
extrapolated from their measured time per re-randomisation (a full R run would take most of an
hour). pnitrial does more in its plan (sensitivity, diagnostics, mediation, missing data,
figures, report).

The panel trial has 50 patients and 15 healthy controls, two visits, the 16 clinical outcomes and
biomarkers of the demo, and N analytes (10% with a true effect), fitted in scatter.chunks jobs.

Usage: python benchmarks/workflow_time.py [--permutations 200] [--analytes 3000] [--chunks 4] [--cores 2]
                                          [--skip-demo] [--skip-panel] [--skip-scripts]
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


def script(cmd: list[str]) -> tuple[float, float, float]:
    """Wall time of a hand-written script, and its own total and permutation seconds (TIMING line)."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    line = next(x for x in res.stdout.splitlines() if x.startswith("TIMING"))
    fields = dict(kv.split("=") for kv in line.split()[1:])
    return wall, float(fields["total_seconds"]), float(fields["permutation_seconds"])


def demo_run(tmp: Path, name: str, cores: int, rerandomisations: int | None) -> tuple[float, float]:
    demo = tmp / name
    shutil.copytree(ROOT / "config", demo / "config")
    shutil.copytree(ROOT / "data", demo / "data")
    configfile = None
    if rerandomisations is not None:
        cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
        cfg["permutation"]["rerandomisations"] = rerandomisations
        cfg["verify"] = {"expected": "none"}
        configfile = demo / "config" / "bench.yaml"
        configfile.write_text(yaml.safe_dump(cfg))
    wall, rss, _ = run(demo, cores, configfile)
    return wall, rss


def main(args: argparse.Namespace) -> None:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    shipped = int(cfg["permutation"]["rerandomisations"])
    B = args.permutations
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_demo:
            wall, rss = demo_run(tmp, "demo", args.cores, None)
            print(
                f"demo trial (16 outcomes), as shipped ({shipped} re-randomisations): {wall:.1f} s wall on "
                f"{args.cores} cores; peak job memory {rss:.0f} MB"
            )
            if not args.skip_scripts:
                ours, _ = demo_run(tmp, "demo_b", args.cores, B)
                codebook = str(ROOT / "data" / "demo" / "dataset.yaml")
                r_wall, r_total, r_perm = script(["Rscript", "benchmarks/handwritten.R", codebook, str(B), "1"])
                sm_wall, sm_total, sm_perm = script(
                    [sys.executable, "benchmarks/handwritten_statsmodels.py", codebook, str(B), "1"]
                )
                print(f"with {B} re-randomisations each, measured in this run:")
                print(f"  pnitrial, the whole plan            {ours:8.1f} s")
                print(f"  hand-written R (lme4/lmerTest/emmeans) {r_wall:5.1f} s   x{r_wall / ours:.1f}")
                print(f"  statsmodels + pingouin script       {sm_wall:8.1f} s   x{sm_wall / ours:.1f}")
                r_at = r_wall + r_perm / B * (shipped - B)
                sm_at = sm_wall + sm_perm / B * (shipped - B)
                print(f"at {shipped} re-randomisations (scripts extrapolated from their time per re-randomisation):")
                print(f"  pnitrial (measured above)           {wall:8.1f} s")
                print(f"  hand-written R                      {r_at:8.1f} s   x{r_at / wall:.0f}")
                print(f"  statsmodels + pingouin script       {sm_at:8.1f} s   x{sm_at / wall:.0f}")
        if args.skip_panel:
            return
        work = tmp / "panel"
        write_panel_trial(work / "data", seed=20261123, n_analytes=args.analytes, fraction=0.1)
        shutil.copytree(ROOT / "config", work / "config")
        cfg["dataset"] = "data/dataset.yaml"
        cfg["scatter"] = {"chunks": args.chunks}
        cfg["verify"] = {"expected": "none"}
        (work / "config" / "panel.yaml").write_text(yaml.safe_dump(cfg))
        wall, rss, jobs = run(work, args.cores, work / "config" / "panel.yaml")
        per = sorted((work / "results" / "benchmarks" / "fit_panel_chunk").glob("*.tsv"))
        chunk_s = [float(pd.read_csv(p, sep="\t")["s"].iloc[0]) for p in per]
        print(
            f"{args.analytes}-analyte panel + 16 outcomes: {wall:.1f} s wall on {args.cores} cores, {args.chunks} "
            f"chunks (chunk jobs {min(chunk_s):.1f}-{max(chunk_s):.1f} s each); peak job memory {rss:.0f} MB"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--permutations", type=int, default=200, help="re-randomisations for the like-for-like runs")
    ap.add_argument("--analytes", type=int, default=3000)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-panel", action="store_true")
    ap.add_argument("--skip-scripts", action="store_true", help="time pnitrial only")
    main(ap.parse_args())
