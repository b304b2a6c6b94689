"""Per-fit time of pnitrial against statsmodels MixedLM and R's lme4/lmerTest, measured in one run.

The model is the trial model `y ~ arm * visit + (1 | participant)` with two visits (REML) at
100, 1,000 and 10,000 rows. pnitrial is timed for the fit alone and with Kenward-Roger or
Satterthwaite inference for the interaction; R is timed by Rscript on the same CSV when R is
installed (lme4::lmer alone, lmerTest::lmer which adds the Satterthwaite Hessian and Jacobian).

Usage: python benchmarks/fit_speed.py [--rows 100 1000 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.inference.contrasts import Inference
from pnitrial.models.engine import ModelData, fit_lmm

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
d <- read.csv(commandArgs(TRUE)[1]); reps <- as.integer(commandArgs(TRUE)[2])
d$arm <- factor(d$arm); d$visit <- factor(d$visit); d$g <- factor(d$g)
time_it <- function(f) { f(); t <- replicate(reps, system.time(f())[["elapsed"]]); median(t) }
cat(time_it(function() lme4::lmer(y ~ arm * visit + (1 | g), d)), "\n")
cat(time_it(function() lmerTest::lmer(y ~ arm * visit + (1 | g), d)), "\n")
"""


def make_trial(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = rows // 2
    arm = rng.permutation(np.arange(m) % 2)
    u = rng.normal(0, 1, m)
    g = np.repeat(np.arange(m), 2)
    visit = np.tile([0, 1], m)
    y = u[g] + 0.3 * arm[g] * visit + rng.normal(size=2 * m)
    return pd.DataFrame({"g": g, "arm": arm[g], "visit": visit, "y": y})


def model_data(df: pd.DataFrame) -> ModelData:
    a, v = df["arm"].to_numpy(float), df["visit"].to_numpy(float)
    X = np.column_stack([np.ones(len(df)), a, v, a * v])
    return ModelData(
        X=X,
        Z=np.ones((len(df), 1)),
        y=df["y"].to_numpy(),
        group=df["g"].to_numpy(),
        fixed_names=("(Intercept)", "arm", "visit", "arm:visit"),
    )


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(rows_list: list[int], repeats: int) -> None:
    import statsmodels.api as sm

    have_r = shutil.which("Rscript") is not None
    L = np.array([0, 0, 0, 1.0])
    header = f"{'rows':>6} {'pnitrial fit':>13} {'+KR':>9} {'+Satt':>9} {'statsmodels':>12} {'lme4':>9} {'lmerTest':>9}"
    print(header + "   ratios: statsmodels/pnitrial+KR, lme4/pnitrial+KR")
    for rows in rows_list:
        df = make_trial(rows)
        d = model_data(df)
        t_fit = median_time(lambda d=d: fit_lmm(d), repeats)
        t_kr = median_time(lambda d=d: Inference(fit_lmm(d), "kenward-roger").estimate(L), repeats)
        t_satt = median_time(lambda d=d: Inference(fit_lmm(d), "satterthwaite").estimate(L), repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sm.MixedLM.from_formula("y ~ arm * visit", groups="g", data=df)
            t_sm = median_time(lambda model=model: model.fit(reml=True), max(1, repeats // 2))
        t_lme4 = t_lmertest = float("nan")
        if have_r:
            with tempfile.TemporaryDirectory() as tmp:
                csv, script = Path(tmp) / "d.csv", Path(tmp) / "b.R"
                df.to_csv(csv, index=False)
                script.write_text(R_SCRIPT)
                out = subprocess.run(["Rscript", str(script), str(csv), str(repeats)], capture_output=True, text=True)
                t_lme4, t_lmertest = (float(x) for x in out.stdout.split())
        print(
            f"{rows:>6} {1e3 * t_fit:>10.2f} ms {1e3 * t_kr:>6.2f} ms {1e3 * t_satt:>6.2f} ms "
            f"{1e3 * t_sm:>9.1f} ms {1e3 * t_lme4:>6.1f} ms {1e3 * t_lmertest:>6.1f} ms"
            f"   {t_sm / t_kr:>6.1f}x  {t_lme4 / t_kr:>6.2f}x"
        )
    if not have_r:
        print("Rscript not found: R columns are NaN (install r-base-core r-cran-lme4 r-cran-lmertest)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    main(a.rows, a.repeats)
