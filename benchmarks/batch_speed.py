"""Batched fits per outcome against statsmodels MixedLM and R's lme4 / lmerTest, measured in one run.

Model: y ~ arm * visit + (1 | participant), two visits, REML, 5% missing values per outcome, at
100, 1,000 and 10,000 rows and 1, 100 and 3,000 outcomes. pnitrial's time covers the batched
fit and the Kenward-Roger and Satterthwaite df of the interaction for every outcome (amortised per
outcome); its peak memory is traced. statsmodels and R fit one outcome at a time, so their per-fit
time does not depend on the number of outcomes: each is measured once per row count on a sample of
outcomes (R times inside R, without start-up; lmerTest adds its Hessian and Jacobian and the
Satterthwaite test). Ratios are per-fit time of the other tool / pnitrial's amortised time.

Usage: python benchmarks/batch_speed.py [--rows 100 1000 10000] [--outcomes 1 100 3000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.inference.contrasts import Inference, batch_estimates, inference_basis
from pnitrial.models.batch import fit_batch
from pnitrial.models.engine import ModelData, fit_lmm

L = np.array([0, 0, 0, 1.0])
R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
d <- read.csv(commandArgs(TRUE)[1]); k <- as.integer(commandArgs(TRUE)[2])
d$arm <- factor(d$arm); d$visit <- factor(d$visit); d$g <- factor(d$g)
ys <- grep("^y", names(d), value = TRUE)[seq_len(k)]
fit1 <- function(y, f) f(as.formula(paste(y, "~ arm * visit + (1 | g)")), d)
invisible(fit1(ys[1], lme4::lmer))
t1 <- system.time(for (y in ys) fit1(y, lme4::lmer))[["elapsed"]]
t2 <- system.time(for (y in ys) summary(fit1(y, lmerTest::lmer))$coefficients)[["elapsed"]]
cat(t1 / k, t2 / k, "\n")
"""


def make_panel(rows: int, outcomes: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    m = rows // 2
    arm = rng.permutation(np.arange(m) % 2)
    g = np.repeat(np.arange(m), 2)
    visit = np.tile([0, 1], m)
    Y = rng.normal(size=(m, outcomes))[g] + 0.3 * (arm[g] * visit)[:, None] + rng.normal(size=(2 * m, outcomes))
    Y[rng.random(Y.shape) < 0.05] = np.nan
    a, v = arm[g].astype(float), visit.astype(float)
    X = np.column_stack([np.ones(2 * m), a, v, a * v])
    return X, g, Y, pd.DataFrame({"g": g, "arm": arm[g], "visit": visit})


def batched(X, g, Y) -> None:
    fit = fit_batch(X, g, Y)
    for method in ("kenward-roger", "satterthwaite"):
        batch_estimates(fit, L, method, basis=inference_basis(fit, method))


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def statsmodels_per_fit(X, g, Y, k: int) -> float:
    import statsmodels.api as sm

    t = 0.0
    for j in range(k):
        ok = np.isfinite(Y[:, j])
        df = pd.DataFrame({"y": Y[ok, j], "arm": X[ok, 1], "visit": X[ok, 2], "g": g[ok]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            sm.MixedLM.from_formula("y ~ arm * visit", groups="g", data=df).fit(reml=True)
            t += time.perf_counter() - t0
    return t / k


def r_per_fit(base: pd.DataFrame, Y: np.ndarray, k: int) -> tuple[float, float]:
    if shutil.which("Rscript") is None:
        return float("nan"), float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "b.R"
        ys = pd.DataFrame(Y[:, :k], columns=[f"y{j}" for j in range(k)])
        pd.concat([base, ys], axis=1).to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv), str(k)], capture_output=True, text=True, check=True)
    lme4, lmertest = (float(x) for x in out.stdout.split())
    return lme4, lmertest


def single_fit_ms(X, g, Y) -> float:
    ok = np.isfinite(Y[:, 0])
    d = ModelData(X=X[ok], Z=np.ones((ok.sum(), 1)), y=Y[ok, 0], group=g[ok], fixed_names=tuple("abcd"))
    return 1e3 * best_time(lambda: Inference(fit_lmm(d), "kenward-roger").estimate(L), 5)


def main(rows_list: list[int], outcome_list: list[int]) -> None:
    samples = {100: (10, 100), 1000: (3, 40), 10000: (1, 10)}  # (statsmodels, R) outcomes timed
    print("per outcome; pnitrial = batched fit + KR df + Satterthwaite df, amortised over the batch")
    print(
        f"{'rows':>6} {'outcomes':>8} {'pnitrial':>11} {'peak MB':>8} {'statsmodels':>12} {'lme4':>9} "
        f"{'lmerTest':>9} {'x statsmodels':>13} {'x lme4':>8} {'x lmerTest':>10}"
    )
    for rows in rows_list:
        k_sm, k_r = samples.get(rows, (1, 10))
        X, g, Y, base = make_panel(rows, max(*outcome_list, k_sm, k_r))  # enough outcomes for every sample
        t_sm = statsmodels_per_fit(X, g, Y, k_sm)
        t_lme4, t_lmertest = r_per_fit(base, Y, k_r)
        for K in outcome_list:
            Yk = np.ascontiguousarray(Y[:, :K])
            t = best_time(lambda X=X, g=g, Yk=Yk: batched(X, g, Yk), 3 if rows * K < 10**7 else 1) / K
            tracemalloc.start()
            batched(X, g, Yk)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(
                f"{rows:>6} {K:>8} {1e6 * t:>8.1f} us {peak:>8.1f} {1e3 * t_sm:>9.1f} ms {1e3 * t_lme4:>6.1f} ms "
                f"{1e3 * t_lmertest:>6.1f} ms {t_sm / t:>12.0f}x {t_lme4 / t:>7.0f}x {t_lmertest / t:>9.0f}x"
            )
        print(f"{rows:>6} single fit from Python (engine.fit_lmm + KR): {single_fit_ms(X, g, Y):.2f} ms")
    if shutil.which("Rscript") is None:
        print("Rscript not found: R columns are NaN (install r-base-core r-cran-lme4 r-cran-lmertest)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--outcomes", type=int, nargs="+", default=[1, 100, 3000])
    a = ap.parse_args()
    main(a.rows, a.outcomes)
