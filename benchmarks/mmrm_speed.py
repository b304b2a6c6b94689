"""Unstructured MMRM fits against R's mmrm, measured in one run.

Model: y ~ arm * visit, us(visit | participant), REML, five visits, 15% of post-baseline visits
missing at random, at 200 and 2,000 participants. pnitrial is timed for the fit alone and with
Kenward-Roger inference for the interaction at the last visit; R's mmrm (when installed) for
mmrm() with its default Kenward-Roger method and df_1d on the same contrast, timed inside R
without start-up. A third row times a 12-visit model (78 covariance parameters). Ratios are R's
time over pnitrial's.

Usage: python benchmarks/mmrm_speed.py [--participants 200 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from fit_speed import median_time  # benchmarks/ is the script's directory

from pnitrial.inference.contrasts import Inference
from pnitrial.models.mmrm import RepeatedData, fit_mmrm

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mmrm))
d <- read.csv(commandArgs(TRUE)[1]); reps <- as.integer(commandArgs(TRUE)[2])
d$arm <- factor(d$arm); d$visit <- factor(d$visit, levels = sort(unique(d$visit))); d$g <- factor(d$g)
time_it <- function(f) { f(); median(replicate(reps, system.time(f())[["elapsed"]])) }
fit <- function() mmrm(y ~ arm * visit + us(visit | g), data = d)
m <- fit(); L <- as.numeric(names(component(m, "beta_est")) == tail(names(component(m, "beta_est")), 1))
cat(time_it(fit), time_it(function() df_1d(fit(), L)), "\n")
"""


def make_trial(m: int, T: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(m), T)
    v = np.tile(np.arange(T), m)
    arm = (g % 2).astype(int)
    L = np.linalg.cholesky(0.5 + np.diag(np.linspace(0.5, 1.5, T)))
    y = (rng.normal(size=(m, T)) @ L.T).ravel() + 0.3 * arm * v
    keep = (rng.random(m * T) > 0.15) | (v == 0)
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


if __name__ == "__main__":
    main()
