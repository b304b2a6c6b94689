"""Write the simulated reference cases (seeded) used by tests/inference/test_parity_r.py.

Usage: python tests/reference/make_cases.py   (rewrites tests/reference/cases/{unbalanced3,singular,slopes})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).parent / "cases"


def _write(name: str, table: pd.DataFrame, codebook: dict, note: str) -> None:
    out = HERE / name
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "trial.csv", index=False, lineterminator="\n")
    (out / "dataset.yaml").write_text(f"# {note}\n" + yaml.safe_dump(codebook, sort_keys=False))


def unbalanced3(seed: int = 31) -> None:
    """Unequal arms (18 vs 27), three visits, increasing dropout, numeric and 3-level covariates."""
    rng = np.random.default_rng(seed)
    arms = ["ctl"] * 18 + ["trt"] * 27
    rows = []
    for i, arm in enumerate(arms):
        age, site = rng.integers(25, 70), rng.choice(["north", "south", "west"])
        u = rng.normal(0, 4)
        for k, v in enumerate(["baseline", "week8", "week20"]):
            if k and rng.random() < 0.12 * k:
                continue
            effect = {"baseline": 0, "week8": -3, "week20": -4}[v] * (arm == "trt")
            y = 30 + u + 0.1 * (age - 45) + (site == "west") * 2 - 1.5 * k + effect + rng.normal(0, 3)
            rows.append((f"U{i:02d}", arm, v, age, site, round(y, 2)))
    table = pd.DataFrame(rows, columns=["pid", "group", "time", "age", "site", "score"])
    cb = {
        "name": "Unbalanced three-visit trial",
        "table": "trial.csv",
        "columns": {"participant": "pid", "arm": "group", "visit": "time"},
        "arms": {"intervention": "trt", "control": "ctl"},
        "visits": ["baseline", "week8", "week20"],
        "covariates": ["age", "site"],
        "outcomes": {"score": {"label": "Score", "unit": "points", "family": "primary", "transform": "none"}},
    }
    _write("unbalanced3", table, cb, "Simulated (make_cases.py): unequal arms, 3 visits, dropout, covariates.")


def singular(seed: int = 5) -> None:
    """A complete 2 x 2 trial (25 per arm) with no between-participant variance: a boundary fit."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(50):
        arm = "A" if i < 25 else "B"
        for v in ("pre", "post"):
            rows.append((f"S{i:02d}", arm, v, round(10 + (v == "post") * (arm == "A") * 1.0 + rng.normal(0, 2), 3)))
    table = pd.DataFrame(rows, columns=["participant", "arm", "visit", "score"])
    # Shrink each participant's values towards the opposite of their mean: negative ICC.
    m = table.groupby("participant")["score"].transform("mean")
    table["score"] = (table["score"] - 0.6 * (m - m.mean())).round(3)
    cb = {
        "name": "Singular boundary case",
        "table": "trial.csv",
        "columns": {"participant": "participant", "arm": "arm", "visit": "visit"},
        "arms": {"intervention": "A", "control": "B"},
        "visits": ["pre", "post"],
        "outcomes": {"score": {"label": "Score", "unit": "units", "family": "primary", "transform": "none"}},
    }
    _write(
        "singular",
        table,
        cb,
        "Simulated (make_cases.py): negative intra-participant correlation, so the "
        "REML between-participant variance is zero.",
    )


def slopes(seed: int = 11) -> None:
    """Four visits at weeks 0, 4, 8, 12 with random intercepts and slopes; log-normal outcome."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(40):
        arm = "int" if i % 2 else "ctl"
        u0, u1 = rng.multivariate_normal([0, 0], [[0.25, 0.01], [0.01, 0.002]])
        for v, t in (("w0", 0), ("w4", 4), ("w8", 8), ("w12", 12)):
            if t and rng.random() < 0.08:
                continue
            y = np.exp(2 + u0 + (u1 - 0.01 + 0.02 * (arm == "int")) * t + rng.normal(0, 0.15))
            rows.append((f"R{i:02d}", arm, v, f"{y:.3f}" if y >= 4.0 else "<4"))
    table = pd.DataFrame(rows, columns=["participant", "arm", "visit", "marker"])
    cb = {
        "name": "Random-slope case",
        "table": "trial.csv",
        "columns": {"participant": "participant", "arm": "arm", "visit": "visit"},
        "arms": {"intervention": "int", "control": "ctl"},
        "visits": ["w0", "w4", "w8", "w12"],
        "visit_times": {"w0": 0, "w4": 4, "w8": 8, "w12": 12},
        "outcomes": {
            "marker": {"label": "Marker", "unit": "ng/mL", "family": "biomarker", "transform": "log", "lod": 4.0}
        },
    }
    _write(
        "slopes",
        table,
        cb,
        "Simulated (make_cases.py): random intercept and slope; fitted with (1 + time | participant).",
    )
    (HERE / "slopes" / "random_slope").write_text("fit with model.random_slope: true\n")


if __name__ == "__main__":
    unbalanced3()
    singular()
    slopes()
