"""Reference-based imputation against R's rbmi, measured in one run.

The same work on each side: conditional mean imputation with the jackknife (an unstructured MMRM
refitted once per participant), MAR, JR, CR and CIR, a delta scan of nine shifts under MAR and two
under each other strategy, ANCOVA at every post-baseline visit. Cases: the demo trial's BDI (one
post-baseline visit, 50 participants) and BtheB (four post-baseline visits, 100 participants).
pnitrial is timed in-process; rbmi (when installed, see tests/reference/build_rbmi.sh) as the
Rscript run of tests/reference/rbmi_reference.R with rbmi's own optimiser settings (--stock),
minus R's start-up and package loading (an Rscript that only loads rbmi). A last row times the
workflow's whole missing-data analysis of the demo trial (16 outcomes, 4 strategies, 5 deltas).

Usage: python benchmarks/missing_data_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from fit_speed import median_time  # benchmarks/ is the script's directory

from pnitrial.analyses.reference_based import STRATEGIES, missing_data_analysis, reference_based
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "demo BDI (1 later visit, 50)": (ROOT / "data" / "demo" / "dataset.yaml", "bdi"),
    "BtheB BDI (4 later visits, 100)": (ROOT / "tests" / "reference" / "cases" / "btheb" / "dataset.yaml", "bdi"),
}
DELTAS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def has_rbmi() -> bool:
    if shutil.which("Rscript") is None:
        return False
    res = subprocess.run(["Rscript", "-e", "library(rbmi)"], capture_output=True, text=True)
    return res.returncode == 0


def rbmi_seconds(codebook: Path, outcome: str) -> float:
    """Wall time of the reference script minus an Rscript that only loads its packages."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            ["Rscript", str(ROOT / "tests" / "reference" / "rbmi_reference.R"), str(codebook), tmp, outcome, "--stock"],
            check=True,
            capture_output=True,
        )
        total = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(
        ["Rscript", "-e", "suppressMessages({library(rbmi); library(yaml)})"], check=True, capture_output=True
    )
    return total - (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timings per case (median reported)")
    a = ap.parse_args(argv)
    r_ok = has_rbmi()
    print(f"{'case':34} {'pnitrial s':>11} {'rbmi s':>9} {'rbmi / pnitrial':>16}")
    for name, (codebook, outcome) in CASES.items():
        frame, meta = build_long_frame(load_codebook(codebook))
        run = lambda f=frame, m=meta, k=outcome: reference_based(f, m, k, STRATEGIES, DELTAS)  # noqa: E731
        ours = median_time(run, a.repeats)
        theirs = rbmi_seconds(codebook, outcome) if r_ok else float("nan")
        ratio = f"{theirs / ours:.0f}x" if r_ok else "rbmi not installed"
        print(f"{name:34} {ours:11.3f} {theirs:9.2f} {ratio:>16}")
    frame, meta = build_long_frame(load_codebook(ROOT / "data" / "demo" / "dataset.yaml"))
    whole = median_time(lambda: missing_data_analysis(frame, meta), a.repeats)
    print(f"{'demo, all 16 outcomes (workflow)':34} {whole:11.3f}")


if __name__ == "__main__":
    main()
