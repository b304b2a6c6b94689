"""Unstructured MMRM fits against R's mmrm, measured in one run.

Model: y ~ arm * visit, us(visit | participant), REML, five visits, 15% of post-baseline visits
missing at random, at 200 and 2,000 participants. pnitrial is timed for the fit alone and with
Kenward-Roger inference for the interaction at the last visit; R's mmrm (when installed) for
mmrm() with its default Kenward-Roger method and df_1d on the same contrast, timed inside R
without start-up. A third row times a 12-visit model (78 covariance parameters). Ratios are R's
time over pnitrial's.

Two panel rows time the batched engine (models.mmrm_batch) on `--analytes` outcomes of the first
trial size, each with its own missing later visits (2%, as failed wells of a proteomic panel, and
15%, as the trials above), per analyte: the batched fit, and the fit plus the Kenward-Roger test of
the interaction; R's mmrm fits one analyte (its time per fit does not depend on the panel's size).

Usage: python benchmarks/mmrm_speed.py [--participants 200 2000] [--repeats 5] [--analytes 1000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fit_speed import median_time  # benchmarks/ is the script's directory

from pnitrial.inference.contrasts import Inference
from pnitrial.models.mmrm import RepeatedData, fit_mmrm
from pnitrial.models.mmrm_batch import Panel, fit_mmrm_batch

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mmrm))
d <- read.csv(commandArgs(TRUE)[1]); reps <- as.integer(commandArgs(TRUE)[2])
d$arm <- factor(d$arm); d$visit <- factor(d$visit, levels = sort(unique(d$visit))); d$g <- factor(d$g)
time_it <- function(f) { f(); median(replicate(reps, system.time(f())[["elapsed"]])) }
fit <- function() mmrm(y ~ arm * visit + us(visit | g), data = d)
m <- fit(); L <- as.numeric(names(component(m, "beta_est")) == tail(names(component(m, "beta_est")), 1))
cat(time_it(fit), time_it(function() df_1d(fit(), L)), "\n")
"""


def make_trial(m: int, T: int, seed: int = 1, missing: float = 0.15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(m), T)
    v = np.tile(np.arange(T), m)
    arm = (g % 2).astype(int)
    L = np.linalg.cholesky(0.5 + np.diag(np.linspace(0.5, 1.5, T)))
    y = (rng.normal(size=(m, T)) @ L.T).ravel() + 0.3 * arm * v
    keep = (rng.random(m * T) >= missing) | (v == 0)
    return pd.DataFrame({"g": g, "arm": arm, "visit": v, "y": y})[keep].reset_index(drop=True)


def repeated(df: pd.DataFrame, T: int) -> RepeatedData:
    v, a = df["visit"].to_numpy(), df["arm"].to_numpy(float)
    cols = [np.ones(len(df)), a] + [v == k for k in range(1, T)] + [a * (v == k) for k in range(1, T)]
    names = ("(Intercept)", "arm", *(f"visit{k}" for k in range(1, T)), *(f"arm:visit{k}" for k in range(1, T)))
    return RepeatedData(np.column_stack(cols).astype(float), df["y"].to_numpy(), df["g"].to_numpy(), v, T, names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, nargs="+", default=[200, 2000], help="participants per trial")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    ap.add_argument("--analytes", type=int, default=1000, help="analytes of the batched panel row (0: none)")
    args = ap.parse_args()
    rscript = shutil.which("Rscript")
    cases = [(m, 5) for m in args.participants] + [(args.participants[0], 12)]
    print(
        f"{'participants':>12} {'visits':>6} {'pnitrial fit':>13} {'+ KR':>9} {'R mmrm':>9} {'+ KR df':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for m, T in cases:
            df = make_trial(m, T)
            d = repeated(df, T)
            L = np.eye(d.p)[-1]
            t_fit = median_time(lambda d=d: fit_mmrm(d, "us"), args.repeats)
            t_kr = median_time(lambda d=d, L=L: Inference(fit_mmrm(d, "us"), "kenward-roger").estimate(L), args.repeats)
            r_fit = r_kr = float("nan")
            if rscript:
                path = Path(tmp) / f"trial_{m}_{T}.csv"
                df.to_csv(path, index=False)
                script = Path(tmp) / "bench.R"
                script.write_text(R_SCRIPT)
                out = subprocess.run(
                    [rscript, str(script), str(path), str(args.repeats)], capture_output=True, text=True
                )
                if out.returncode == 0 and out.stdout.split():
                    r_fit, r_kr = (float(x) for x in out.stdout.split()[:2])
            print(
                f"{m:>12} {T:>6} {t_fit * 1e3:>10.1f} ms {t_kr * 1e3:>6.1f} ms {r_fit * 1e3:>6.1f} ms "
                f"{r_kr * 1e3:>6.1f} ms {r_kr / t_kr:>5.1f}x"
            )
        if args.analytes:
            for missing in (0.02, 0.15):
                panel_row(args.participants[0], 5, args.analytes, missing, rscript, Path(tmp), args.repeats)
            panel_analysis(args.participants[0], 5, max(1, args.analytes // 3))


def panel_analysis(m: int, T: int, A: int) -> None:
    """The panel path of the workflow per analyte: lmm and cLDA MMRMs, every contrast with KR, the ANCOVAs."""
    from pnitrial.analyses.estimands import AnalysisOptions
    from pnitrial.analyses.panel import analyse_panel
    from pnitrial.data.examples import visit_grid

    rows, meta = visit_grid(m, T)
    Y = np.column_stack([make_trial(m, T, seed=k + 1, missing=0.0)["y"] for k in range(A)])
    Y[(np.random.default_rng(3).random(Y.shape) < 0.03)] = np.nan
    panel = {"analytes": [f"a{k}" for k in range(A)], "family": "protein", "transform": "none", "unit": "NPX"}
    t0 = time.perf_counter()
    analyse_panel(rows, Y, meta, panel, AnalysisOptions(covariance="us"))
    per = (time.perf_counter() - t0) / A
    print(f"panel analysis (lmm + cLDA MMRMs, KR tests of every contrast, 4 ANCOVAs): {per * 1e3:.1f} ms per analyte")


def panel_row(m: int, T: int, A: int, missing: float, rscript: str | None, tmp: Path, repeats: int) -> None:
    """Per analyte: a panel's MMRMs fitted in one batch (and with the KR test), against R one at a time."""
    full = repeated(make_trial(m, T, seed=1, missing=0.0), T)
    Y = np.column_stack([make_trial(m, T, seed=k + 1, missing=0.0)["y"] for k in range(A)])
    rng = np.random.default_rng(2)
    Y[(rng.random(Y.shape) < missing) & (full.visit[:, None] > 0)] = np.nan  # each analyte its own gaps
    panel = Panel(full.X, full.group, full.visit, T, full.fixed_names, Y)
    L = np.eye(full.p)[-1]
    t0 = time.perf_counter()
    fits = fit_mmrm_batch(panel, "us")
    t_fit = (time.perf_counter() - t0) / A
    fits = [f if f is not None else fit_mmrm(panel.data(a), "us") for a, f in enumerate(fits)]
    for f in fits:
        Inference(f, "kenward-roger").estimate(L)
    t_kr = (time.perf_counter() - t0) / A
    r_fit = r_kr = float("nan")
    if rscript:
        path = tmp / "panel_first.csv"
        make_trial(m, T, seed=1).to_csv(path, index=False)
        script = tmp / "bench.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run([rscript, str(script), str(path), str(repeats)], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split():
            r_fit, r_kr = (float(x) for x in out.stdout.split()[:2])
    label = f"{A} analytes"
    print(
        f"{label:>12} {T:>6} {t_fit * 1e3:>10.2f} ms {t_kr * 1e3:>6.2f} ms {r_fit * 1e3:>6.1f} ms "
        f"{r_kr * 1e3:>6.1f} ms {r_kr / t_kr:>5.0f}x   (per analyte; {m} participants, {missing:.0%} missing)"
    )


if __name__ == "__main__":
    main()
