"""Seeded simulator of a stand-in for the model study (MBPM vs wait-list in chronic pain).

No participant-level data of the model study is public. This makes a realistic
trial from a seed: 1:1 randomised patients measured pre and post, healthy
controls at baseline, log-normal salivary assays with limits of detection
exported as the lab would (``<0.05``), questionnaires on their own bounded
integer or T-score scales, and the true effects written alongside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


@dataclass(frozen=True)
class Biomarker:
    """A simulated salivary assay: log-normal, with a limit of detection and a true effect.

    Parameters
    ----------
    key, label : str
        Outcome key and label.
    median : float
        Median of patients at baseline (pg/mL).
    sd_between, sd_within : float
        Between- and within-participant SD on the log scale.
    lod : float
        Kit limit of detection; smaller values are exported as ``<lod``.
    effect : float
        True intervention effect, a log-ratio: change under MBPM minus change under wait-list.
    healthy : float
        Log-ratio of healthy controls to patients at baseline.
    decimals : int
        Decimals the lab reports.

    Examples
    --------
    >>> il6 = next(b for b in BIOMARKERS if b.key == "il6")
    >>> il6.lod, round(float(np.exp(il6.effect)), 4)
    (0.06, 0.9048)
    """

    key: str
    label: str
    median: float  # patients at baseline, pg/mL
    sd_between: float  # log scale
    sd_within: float  # log scale
    lod: float
    effect: float  # log-ratio: MBPM change minus wait-list change
    healthy: float  # log-ratio healthy vs patients at baseline
    decimals: int


@dataclass(frozen=True)
class Score:
    """A simulated questionnaire score on its own bounded scale, with a true effect.

    Parameters
    ----------
    key, label, unit : str
        Outcome key, label and unit (``'score'`` or ``'T-score'``).
    low, high : float
        Bounds of the instrument; simulated values are clipped to them.
    mean : float
        Mean of patients at baseline.
    sd_between, sd_within : float
        Between- and within-participant SD, in instrument units.
    effect : float
        True intervention effect: change under MBPM minus change under wait-list.
    healthy : float
        Healthy controls minus patients at baseline.
    decimals : int
        Decimals of the score (0 for integer instruments).
    better : {'lower', 'higher'}
        The direction of improvement on the instrument.

    Examples
    --------
    >>> bdi = next(s for s in SCORES if s.key == "bdi")
    >>> (bdi.low, bdi.high), bdi.effect
    ((0, 63), -4.0)
    """

    key: str
    label: str
    unit: str
    low: float
    high: float
    mean: float
    sd_between: float
    sd_within: float
    effect: float  # MBPM change minus wait-list change, instrument units
    healthy: float  # healthy minus patients at baseline
    decimals: int  # 0 for integer instruments
    better: str = "lower"


# Kit sensitivities and published salivary ranges (Salimetrics; oxytocin EIA).
BIOMARKERS = (
    Biomarker("oxytocin", "Salivary oxytocin", 15.0, 0.55, 0.25, 4.68, 0.30, 0.25, 2),
    Biomarker("il1b", "Salivary IL-1\u03b2", 120.0, 0.80, 0.35, 0.05, -0.10, -0.20, 2),
    Biomarker("il6", "Salivary IL-6", 4.0, 0.90, 0.40, 0.06, -0.10, -0.25, 2),
    Biomarker("il8", "Salivary IL-8", 350.0, 0.70, 0.30, 0.07, -0.08, -0.15, 2),
    Biomarker("tnfa", "Salivary TNF-\u03b1", 0.3, 1.10, 0.45, 0.04, -0.10, -0.20, 2),
    Biomarker("dheas", "Salivary DHEA-S", 2500.0, 0.60, 0.25, 188.9, -0.05, 0.15, 0),
)

SCORES = (
    Score("promis_pain", "PROMIS-29 pain interference", "T-score", 41.6, 75.6, 63.0, 5.0, 3.5, -3.5, -14.0, 1),
    Score("promis_anxiety", "PROMIS-29 anxiety", "T-score", 40.3, 81.6, 56.0, 7.0, 4.0, -2.0, -8.0, 1),
    Score("promis_depression", "PROMIS-29 depression", "T-score", 41.0, 79.4, 55.0, 7.0, 4.0, -2.5, -8.0, 1),
    Score("pain_intensity", "Pain intensity (0-10)", "score", 0, 10, 6.0, 1.4, 1.1, -1.0, -5.0, 0),
    Score("sfmpq", "SF-MPQ total", "score", 0, 45, 18.0, 6.0, 4.0, -3.0, -15.0, 0),
    Score("pcs", "Pain Catastrophizing Scale", "score", 0, 52, 24.0, 9.0, 5.0, -5.0, -14.0, 0),
    Score("bdi", "BDI-II total", "score", 0, 63, 17.0, 8.0, 4.5, -4.0, -11.0, 0),
    Score("maia", "MAIA total (mean item)", "score", 0, 5, 2.6, 0.6, 0.35, 0.40, 0.5, 2, "higher"),
    Score("ffmq", "FFMQ total", "score", 39, 195, 125.0, 14.0, 8.0, 8.0, 12.0, 0, "higher"),
    Score("pam13", "PAM-13 activation", "score", 0, 100, 58.0, 11.0, 7.0, 5.0, 12.0, 1, "higher"),
)

ARMS = {"intervention": "MBPM", "control": "waitlist", "healthy": "healthy"}
VISITS = ("pre", "post")


def _participants(rng: np.random.Generator, n_patients: int, n_healthy: int) -> pd.DataFrame:
    n = n_patients + n_healthy
    ids = [f"PNI-{k:03d}" for k in rng.permutation(np.arange(101, 101 + n))]
    arm = (
        rng.permutation(
            [ARMS["intervention"]] * (n_patients // 2) + [ARMS["control"]] * (n_patients - n_patients // 2)
        ).tolist()
        + [ARMS["healthy"]] * n_healthy
    )
    age = np.clip(np.round(rng.normal(47, 11, n)), 20, 75).astype(int)
    sex = np.where(rng.random(n) < 0.7, "F", "M")
    return pd.DataFrame({"participant": ids, "arm": arm, "age": age, "sex": sex})


def simulate_trial(
    seed: int, n_patients: int = 50, n_healthy: int = 15, dropout: float = 0.10
) -> tuple[pd.DataFrame, dict, dict]:
    """Simulate the trial table (long, as a lab and a REDCap export would give it).

    Patients are randomised 1:1 to MBPM or wait-list and measured pre and post (a `dropout`
    share miss post), healthy controls at baseline only; every outcome of `BIOMARKERS` and
    `SCORES` has a random participant intercept and its true effect.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the same seed gives the same trial.
    n_patients : int, optional
        Randomised patients (the intervention arm has the smaller half when odd).
    n_healthy : int, optional
        Healthy controls.
    dropout : float, optional
        Share of patients without a post visit.

    Returns
    -------
    table : DataFrame
        One row per participant x visit, every cell text as exported (``'<0.05'`` below the LOD,
        ``''`` for a failed assay or a skipped questionnaire).
    codebook : dict
        The codebook of the table (write it as YAML).
    truth : dict
        The design and the true effects.

    Examples
    --------
    >>> table, codebook, truth = simulate_trial(1, n_patients=6, n_healthy=2)
    >>> table.shape, table["visit"].value_counts().to_dict()
    ((13, 21), {'pre': 8, 'post': 5})
    >>> codebook["visits"], len(codebook["outcomes"]), truth["effects"]["il6"]["ratio"]
    (['pre', 'post'], 16, 0.9048)
    """
    rng = np.random.default_rng(seed)
    people = _participants(rng, n_patients, n_healthy)
    patient = people["arm"] != ARMS["healthy"]
    n_drop = int(round(dropout * n_patients))
    dropped = set(rng.choice(people.index[patient], n_drop, replace=False).tolist())
    rows = [(i, "pre") for i in people.index]
    rows += [(i, "post") for i in people.index[patient] if i not in dropped]
    long = pd.DataFrame(rows, columns=["idx", "visit"])
    long = long.join(people, on="idx")
    post = (long["visit"] == "post").to_numpy()
    mbpm = (long["arm"] == ARMS["intervention"]).to_numpy()
    healthy = (long["arm"] == ARMS["healthy"]).to_numpy()
    age_c = (long["age"].to_numpy() - 47) / 10
    idx = long["idx"].to_numpy()
    table = long[["participant", "arm", "visit", "age", "sex"]].copy()

    for b in BIOMARKERS:
        u = rng.normal(0, b.sd_between, len(people))[idx]
        logy = (
            np.log(b.median)
            + u
            + rng.normal(0, b.sd_within, len(long))
            + b.healthy * healthy
            + b.effect * (mbpm & post)
            + 0.05 * age_c
        )
        value = np.round(np.exp(logy), b.decimals)
        cells = np.array([f"{v:.{b.decimals}f}" for v in value], dtype=object)
        below = value < b.lod
        cells[below] = f"<{b.lod:g}"
        lost = rng.random(len(long)) < 0.02  # assay failures
        cells[lost] = ""
        table[b.key] = cells

    for s in SCORES:
        u = rng.normal(0, s.sd_between, len(people))[idx]
        latent = s.mean + u + rng.normal(0, s.sd_within, len(long)) + s.healthy * healthy + s.effect * (mbpm & post)
        value = np.clip(np.round(latent, s.decimals), s.low, s.high) + 0.0  # no '-0'
        lost = rng.random(len(long)) < 0.01  # skipped questionnaire
        table[s.key] = ["" if miss else f"{v:.{s.decimals}f}" for v, miss in zip(value, lost, strict=True)]

    order = {v: k for k, v in enumerate(VISITS)}
    table = table.assign(_v=table["visit"].map(order)).sort_values(["participant", "_v"])
    table = table.drop(columns="_v").reset_index(drop=True)
    return table, _codebook(), _truth(seed, n_patients, n_healthy, n_drop)


def _codebook() -> dict:
    outcomes = {}
    for b in BIOMARKERS:
        outcomes[b.key] = {"label": b.label, "unit": "pg/mL", "family": "biomarker", "transform": "log", "lod": b.lod}
    for s in SCORES:
        outcomes[s.key] = {
            "label": s.label,
            "unit": s.unit,
            "family": "clinical",
            "transform": "none",
            "range": [s.low, s.high],
            "better": s.better,
        }
    return {
        "name": "Simulated MBPM vs wait-list trial (stand-in for the model study)",
        "table": "trial.csv",
        "columns": {"participant": "participant", "arm": "arm", "visit": "visit"},
        "arms": dict(ARMS),
        "visits": list(VISITS),
        "covariates": ["age", "sex"],
        "outcomes": outcomes,
    }


def _truth(seed: int, n_patients: int, n_healthy: int, n_drop: int) -> dict:
    effects = {}
    for b in BIOMARKERS:
        effects[b.key] = {
            "scale": "log",
            "interaction": b.effect,
            "ratio": round(float(np.exp(b.effect)), 4),
            "healthy_minus_patients_baseline": b.healthy,
            "sd_between": b.sd_between,
            "sd_within": b.sd_within,
        }
    for s in SCORES:
        effects[s.key] = {
            "scale": "instrument (latent, before rounding and clipping)",
            "interaction": s.effect,
            "healthy_minus_patients_baseline": s.healthy,
            "sd_between": s.sd_between,
            "sd_within": s.sd_within,
        }
    return {
        "seed": seed,
        "design": {
            "patients": n_patients,
            "healthy": n_healthy,
            "missing_post": n_drop,
            "arms": dict(ARMS),
            "visits": list(VISITS),
        },
        "note": (
            "interaction = change from pre to post under MBPM minus change under "
            "wait-list; no change over time in the wait-list arm."
        ),
        "effects": effects,
    }


def write_demo(outdir: str | Path, seed: int, n_patients: int = 50) -> list[Path]:
    """Write trial.csv, dataset.yaml and truth.yaml into outdir; returns the paths.

    Parameters
    ----------
    outdir : str or Path
        Directory to write into (created if needed).
    seed : int
        Seed of `simulate_trial` (15 healthy controls).
    n_patients : int, optional
        Patients randomised over the two arms (default 50, the bundled trial).

    Returns
    -------
    list of Path
        The table, the codebook and the truth, in that order.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_demo(tmp, seed=1)
    ...     codebook = yaml.safe_load(paths[1].read_text())
    >>> [p.name for p in paths], codebook["table"]
    (['trial.csv', 'dataset.yaml', 'truth.yaml'], 'trial.csv')
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    table, codebook, truth = simulate_trial(seed, n_patients=n_patients)
    paths = [out / "trial.csv", out / "dataset.yaml", out / "truth.yaml"]
    table.to_csv(paths[0], index=False, lineterminator="\n")
    header = "# Codebook of the bundled simulated trial (made by pnitrial.simulate).\n"
    paths[1].write_text(header + yaml.safe_dump(codebook, sort_keys=False, allow_unicode=True))
    paths[2].write_text("# True effects of the simulated trial.\n" + yaml.safe_dump(truth, sort_keys=False))
    return paths


def simulate_panel(
    table: pd.DataFrame, n_analytes: int, fraction: float, seed: int, missing: float = 0.02
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An Olink-like NPX panel (log2 scale) measured at every row of a simulated trial table.

    Each analyte has its own level, between- and within-participant SD and a small common
    time trend; a `fraction` of analytes (chosen at random) carries a true intervention effect
    of 0.4 to 1.0 total SDs, up or down. Returns (wide panel table, truth per analyte).

    Parameters
    ----------
    table : DataFrame
        A table from `simulate_trial` (its participant, arm and visit columns are used).
    n_analytes : int
        Number of analytes, named ``P0001``, ``P0002``, ...
    fraction : float
        Share of analytes with a true effect, in [0, 1].
    seed : int
        Seed of the random generator.
    missing : float, optional
        Share of cells left empty (failed wells).

    Returns
    -------
    panel : DataFrame
        Participant, visit and one column per analyte, a row for every row of `table`.
    truth : DataFrame
        Per analyte: ``analyte``, ``has_effect``, ``interaction``, ``sd_between``, ``sd_within``.

    Examples
    --------
    >>> table, _, _ = simulate_trial(1, n_patients=6, n_healthy=2)
    >>> panel, truth = simulate_panel(table, n_analytes=20, fraction=0.25, seed=2)
    >>> panel.shape, list(panel.columns[:3]), int(truth["has_effect"].sum())
    ((13, 22), ['participant', 'visit', 'P0001'], 5)
    """
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    names = [f"P{k:04d}" for k in range(1, n_analytes + 1)]
    pid = pd.factorize(table["participant"])[0]
    m = int(pid.max()) + 1
    post = (table["visit"] != VISITS[0]).to_numpy()
    mbpm = (table["arm"] == ARMS["intervention"]).to_numpy()
    level = rng.normal(6.0, 2.0, n_analytes)
    sd_u = rng.uniform(0.3, 1.2, n_analytes)
    sd_e = rng.uniform(0.15, 0.5, n_analytes)
    trend = rng.normal(0.0, 0.05, n_analytes)
    has = np.zeros(n_analytes, dtype=bool)
    has[rng.choice(n_analytes, int(round(fraction * n_analytes)), replace=False)] = True
    size = rng.uniform(0.4, 1.0, n_analytes) * rng.choice([-1.0, 1.0], n_analytes) * np.hypot(sd_u, sd_e)
    effect = np.where(has, size, 0.0)
    npx = (
        level
        + rng.normal(size=(m, n_analytes))[pid] * sd_u
        + rng.normal(size=(len(table), n_analytes)) * sd_e
        + np.outer(post, trend)
        + np.outer(mbpm & post, effect)
    )
    npx = np.round(npx, 4)
    npx[rng.random(npx.shape) < missing] = np.nan  # failed wells
    panel = pd.DataFrame(npx, columns=names)
    panel.insert(0, "visit", table["visit"].to_numpy())
    panel.insert(0, "participant", table["participant"].to_numpy())
    truth = pd.DataFrame(
        {"analyte": names, "has_effect": has, "interaction": np.round(effect, 6), "sd_between": sd_u, "sd_within": sd_e}
    )
    return panel, truth


def write_panel_trial(outdir: str | Path, seed: int, n_analytes: int, fraction: float = 0.1, **trial) -> list[Path]:
    """A simulated trial with a panel: trial.csv, panel.csv, dataset.yaml, truth.yaml, panel_truth.csv.

    Parameters
    ----------
    outdir : str or Path
        Directory to write into (created if needed).
    seed : int
        Seed of the trial; the panel uses ``seed + 1``.
    n_analytes : int
        Number of panel analytes.
    fraction : float, optional
        Share of analytes with a true effect.
    **trial
        Passed on to `simulate_trial` (``n_patients``, ``n_healthy``, ``dropout``).

    Returns
    -------
    list of Path
        The five files, in the order above.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_panel_trial(tmp, seed=1, n_analytes=5, n_patients=6, n_healthy=2)
    ...     codebook = yaml.safe_load(paths[2].read_text())
    >>> [p.name for p in paths]
    ['trial.csv', 'panel.csv', 'dataset.yaml', 'truth.yaml', 'panel_truth.csv']
    >>> codebook["panel"]["unit"], codebook["panel"]["table"]
    ('NPX', 'panel.csv')
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    table, codebook, truth = simulate_trial(seed, **trial)
    panel, ptruth = simulate_panel(table, n_analytes, fraction, seed + 1)
    codebook["name"] = f"Simulated MBPM trial with a {n_analytes}-analyte panel"
    codebook["panel"] = {
        "table": "panel.csv",
        "label": f"Simulated proteomic panel ({n_analytes} analytes)",
        "unit": "NPX",
        "family": "protein",
        "transform": "none",
    }
    paths = [out / n for n in ("trial.csv", "panel.csv", "dataset.yaml", "truth.yaml", "panel_truth.csv")]
    table.to_csv(paths[0], index=False, lineterminator="\n")
    panel.to_csv(paths[1], index=False, lineterminator="\n", float_format="%.4f")
    paths[2].write_text(
        "# Codebook of a simulated trial with a panel (pnitrial.simulate).\n"
        + yaml.safe_dump(codebook, sort_keys=False, allow_unicode=True)
    )
    paths[3].write_text("# True effects of the simulated trial.\n" + yaml.safe_dump(truth, sort_keys=False))
    ptruth.to_csv(paths[4], index=False, lineterminator="\n", float_format="%.6g")
    return paths


def main(argv: list[str] | None = None) -> None:
    """python -m pnitrial simulate OUTDIR [--seed S] [--panel N --fraction F]"""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pnitrial simulate", description=main.__doc__)
    ap.add_argument("outdir", help="directory to write the table, codebook and true effects into (created)")
    ap.add_argument("--seed", type=int, default=20261123, help="random seed (default: the bundled trial's)")
    ap.add_argument("--panel", type=int, default=0, help="number of panel analytes (0: no panel)")
    ap.add_argument("--fraction", type=float, default=0.1, help="fraction of analytes with a true effect")
    ap.add_argument("--patients", type=int, default=50, help="patients randomised over the two arms (default 50)")
    a = ap.parse_args(argv)
    if a.panel:
        paths = write_panel_trial(a.outdir, a.seed, a.panel, a.fraction, n_patients=a.patients)
    else:
        paths = write_demo(a.outdir, a.seed, n_patients=a.patients)
    print("\n".join(map(str, paths)))


if __name__ == "__main__":
    main()
