"""Trial tables across the space users bring, and the whole plan run on one in-process.

`trials()` is a hypothesis strategy for (table, codebook) pairs: integer, float and mixed-type
outcome columns, 2-12 visits, 3-200 per arm, unequal arms, monotone and intermittent missing
visits, an outcome all missing at one visit, constant outcomes in one arm, extreme values,
below-LOD markers, numeric / categorical / constant covariates, with and without healthy
controls. `run_plan` runs every step function of the workflow on it, in the order of the
Snakefile, without Snakemake; it returns the ValidationError message when the input is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import strategies as st

from pnitrial import steps
from pnitrial.analyses.estimands import AnalysisOptions
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.data.panel import build_panel_frame
from pnitrial.errors import ValidationError

KINDS = ("score", "float", "concentration", "mixed")


@st.composite
def trials(draw, max_per_arm: int = 200, max_visits: int = 12) -> tuple[pd.DataFrame, dict]:
    return make_trial(
        seed=draw(st.integers(0, 2**32 - 1)),
        n_visits=draw(st.integers(2, max_visits)),
        n_int=draw(st.integers(3, max_per_arm)),
        n_ctl=draw(st.integers(3, max_per_arm)),
        n_healthy=draw(st.sampled_from([0, 0, 3, 8])),
        kinds=tuple(draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))),
        dropout=draw(st.sampled_from(["none", "monotone", "intermittent", "both"])),
        covariate=draw(st.sampled_from(["none", "numeric", "categorical", "constant"])),
        quirk=draw(st.sampled_from(["none", "all_missing_visit", "constant_arm", "extreme", "all_below_lod"])),
        panel=draw(st.sampled_from([0, 0, 0, 6])),
    )


def make_trial(
    seed: int,
    n_visits: int,
    n_int: int,
    n_ctl: int,
    n_healthy: int,
    kinds: tuple[str, ...],
    dropout: str,
    covariate: str,
    quirk: str,
    panel: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """One trial table and its codebook, all of its randomness from `seed`; `panel` analytes in a wide
    table (codebook key `panel`, table in the returned codebook's `_panel` entry) when above 0."""
    rng = np.random.default_rng(seed)
    visits = [f"v{i}" for i in range(n_visits)]
    roles = ["A"] * n_int + ["B"] * n_ctl + ["H"] * n_healthy
    rows = []
    for i, role in enumerate(roles):
        person = rng.normal()
        last = n_visits
        if dropout in ("monotone", "both") and role != "H" and rng.random() < 0.2:
            last = int(rng.integers(1, n_visits))
        for j, v in enumerate(visits[: (1 if role == "H" else last)]):
            if j and dropout in ("intermittent", "both") and rng.random() < 0.1:
                continue
            rows.append({"participant": f"ID{seed % 997}-{i:04d}", "arm": role, "visit": v, "_p": person, "_j": j})
    table = pd.DataFrame(rows)
    if covariate != "none":
        pid = table["participant"]
        if covariate == "numeric":
            ages = {p: int(a) for p, a in zip(pid.unique(), rng.integers(20, 70, pid.nunique()), strict=True)}
            table["age"] = pid.map(ages).astype(str)
        elif covariate == "categorical":
            sexes = {p: s for p, s in zip(pid.unique(), rng.choice(["F", "M"], pid.nunique()), strict=True)}
            table["sex"] = pid.map(sexes)
        else:
            table["site"] = "1"
    outcomes = {}
    for k, kind in enumerate(kinds):
        key = f"y{k}"
        effect = (table["arm"] == "A") * (table["_j"] > 0) * 0.5
        noise = rng.normal(size=len(table))
        latent = table["_p"] + effect + noise
        spec = {"label": f"Outcome {k}", "unit": "u", "family": "biomarker" if kind == "concentration" else "clinical"}
        if kind == "score":
            cells = np.clip(np.round(10 + 3 * latent), 0, 30).astype(int).astype(str)
            spec.update(transform="none", range=[0, 30])
        elif kind == "float":
            cells = np.array([f"{x:.3f}" for x in 50 + 5 * latent])
            spec.update(transform="none")
        elif kind == "mixed":
            vals = 20 + 4 * latent
            cells = np.array([str(int(round(x))) if i % 2 else f"{x:.2f}" for i, x in enumerate(vals)])
            spec.update(transform="none")
        else:
            conc = np.exp(1.0 + 0.6 * latent)
            lod = float(np.quantile(conc, 0.1))
            cells = np.array([f"{x:.4g}" if x >= lod else "<LOD" for x in conc])
            spec.update(transform="log", lod=round(lod, 6))
        if quirk == "all_missing_visit" and n_visits > 2 and k == 0:
            cells = np.where(table["visit"] == visits[-1], "", cells)
        if quirk == "constant_arm" and k == 0 and kind != "concentration":
            cells = np.where(table["arm"] == "B", cells[0], cells)
        if quirk == "extreme" and k == 0 and kind == "float":
            cells = cells.copy()
            cells[0] = "5000.0"
        if quirk == "all_below_lod" and kind == "concentration":
            cells = np.full(len(cells), "<LOD")
        table[key] = cells
        outcomes[key] = spec
    wide = None
    if panel:
        wide = table[["participant", "visit"]].copy()
        for a in range(panel):
            npx = 5 + table["_p"] * 0.5 + rng.normal(size=len(table)) * 0.3 + (a == 0) * effect
            cells = np.array([f"{x:.3f}" for x in npx])
            cells[rng.random(len(cells)) < 0.05] = ""
            wide[f"A{a:03d}"] = cells
        wide["PlateID"] = "plate1"  # a non-analyte column, skipped through panel.ignore
    table = table.drop(columns=["_p", "_j"])
    arms = {"intervention": "A", "control": "B", **({"healthy": "H"} if n_healthy else {})}
    covariates = [c for c in ("age", "sex", "site") if c in table]
    codebook = {
        "name": f"generated {seed}",
        "table": "trial.csv",
        "columns": {"participant": "participant", "arm": "arm", "visit": "visit"},
        "arms": arms,
        "visits": visits,
        "covariates": covariates,
        "outcomes": outcomes,
    }
    if wide is not None:
        codebook["panel"] = {"table": "panel.csv", "family": "protein", "transform": "none", "ignore": ["PlateID"]}
        codebook["_panel"] = wide
    return table, codebook


def write_trial(table: pd.DataFrame, codebook: dict, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    table.to_csv(where / "trial.csv", index=False, lineterminator="\n")
    codebook = dict(codebook)
    wide = codebook.pop("_panel", None)
    if wide is not None:
        wide.to_csv(where / "panel.csv", index=False, lineterminator="\n")
    path = where / "dataset.yaml"
    path.write_text(yaml.safe_dump(codebook, sort_keys=False))
    return path


CONFIG = {
    "analysis": {"primary": "clda"},
    "inference": {"ddf": "kenward-roger", "alpha": 0.05},
    "multiplicity": {"method": "bh"},
    "lod": {"method": "censored"},
    "model": {"random_slope": False},
}


def run_plan(codebook: Path, out: Path, figures: bool = False) -> str | None:
    """Every step of the plan on one trial; None when it finished, the validation message when refused."""
    logging.getLogger("pnitrial").handlers.clear()
    try:
        cb = load_codebook(codebook)
        build_long_frame(cb, lod_method="censored", min_per_arm=3)
        if cb.panel is not None:
            build_panel_frame(cb, min_per_arm=3)
    except ValidationError as exc:
        return str(exc)
    out.mkdir(parents=True, exist_ok=True)
    frame, meta, lod = out / "long.csv", out / "meta.json", out / "lod.csv"
    steps.validate_data(str(codebook), str(frame), str(meta), str(lod), "censored", 3)
    opts = AnalysisOptions(censored=True, covariance="auto")  # the workflow default
    keys = [o.key for o in cb.outcomes]
    models = []
    for key in keys:
        models.append(str(out / f"{key}.json"))
        steps.fit_outcome(str(frame), str(meta), key, models[-1], opts)
    tables = {k: str(out / f"{k}.csv") for k in ("effects", "emmeans", "fits", "anova")}
    steps.effect_tables(models, str(meta), "bh", {**tables, "effects_md": str(out / "effects.md")})
    healthy = cb.healthy is not None
    base = {"table1": str(out / "table1.csv"), "table1_md": str(out / "table1.md")}
    if healthy:
        base["baseline"] = str(out / "baseline.csv")
    steps.baseline_tables(str(frame), str(meta), 0.05, base)
    steps.effect_sizes_table(
        tables["effects"], base.get("baseline"), str(frame), str(meta), str(out / "effect_sizes.csv")
    )
    steps.association_table(str(frame), str(meta), ("biomarker", "clinical"), "bh", 0.05, 5, str(out / "assoc.csv"))
    steps.sensitivity_analyses(str(frame), str(meta), opts, "winsorise", 3.0, str(out / "sensitivity.csv"))
    fig = out / "figures"
    fig.mkdir(exist_ok=True)
    formats = ("png",) if figures else ()
    steps.diagnostics(str(frame), str(meta), "clda", False, str(out / "diagnostics.csv"), str(fig), formats, 50)
    settings = {"mediators": keys[:1], "outcome_family": "clinical", "bootstrap": 50, "min_participants": 8}
    steps.mediation_analyses(
        str(frame), str(meta), settings, 1, 0.05, "bh", str(out / "mediation.csv"), str(fig / "m"), formats, 50
    )
    steps.permutation_tests(str(frame), str(meta), tables["effects"], "clda", 50, 1, "bh", str(out / "perm.csv"))
    if figures:
        for key in keys:
            steps.trajectory_figure(str(frame), str(meta), tables["emmeans"], key, str(fig / key), formats, 50, 0.05)
            steps.sensitivity_figure(
                str(out / "sensitivity.csv"), str(meta), key, str(fig / f"s_{key}"), formats, 50, 0.05
            )
        sizes = str(out / "effect_sizes.csv")
        steps.forest_figure(tables["effects"], sizes, str(meta), str(fig / "forest"), formats, 50)
        steps.association_figure(str(out / "assoc.csv"), str(meta), str(fig / "assoc"), formats, 50, 0.05)
        if healthy:
            steps.baseline_figure(base["baseline"], str(meta), str(fig / "healthy"), formats, 50)
    summary_inputs = {
        "meta": str(meta),
        "effects": tables["effects"],
        "fits": tables["fits"],
        "lod": str(lod),
        "effect_sizes": str(out / "effect_sizes.csv"),
        "associations": str(out / "assoc.csv"),
        "sensitivity": str(out / "sensitivity.csv"),
        "diagnostics": str(out / "diagnostics.csv"),
        "mediation": str(out / "mediation.csv"),
        "permutation": str(out / "perm.csv"),
        "panel": [],
    }
    if cb.panel is not None:
        pdata = {k: str(out / f"panel_{k}") for k in ("rows", "values", "meta")}
        steps.validate_panel(str(codebook), pdata, 3)
        inputs = {"rows": pdata["rows"], "values": pdata["values"], "panel_meta": pdata["meta"], "meta": str(meta)}
        chunks = []
        for chunk in range(2):
            chunks.append({k: str(out / f"chunk{chunk}.{k}.csv") for k in ("effects", "fits")})
            steps.fit_panel_chunk(inputs, chunk, 2, opts, chunks[-1])
        names = ("effects", "fits", "top")
        ptables = {k: str(out / f"panel_{k}.csv") for k in names} | {"top_md": str(out / "panel_top.md")}
        efiles, ffiles = [c["effects"] for c in chunks], [c["fits"] for c in chunks]
        steps.panel_tables(efiles, ffiles, str(meta), pdata["meta"], "bh", 5, ptables)
        if figures:
            stems = {"volcano": str(fig / "volcano"), "forest": str(fig / "top")}
            steps.panel_figures(ptables["effects"], pdata["meta"], 0.05, 5, stems, formats, 50)
        summary_inputs["panel"] = [ptables["top"], pdata["meta"]]
    steps.summary(summary_inputs, {**CONFIG, "lod": {"method": "censored"}}, str(out / "summary.html"))
    return None
