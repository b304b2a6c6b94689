"""Workflow steps as plain functions of paths and options (the Snakemake scripts call these).

Each step reads files, computes, and writes its outputs; nothing here imports
Snakemake, so every step can be run and tested on its own. Plotting and pingouin are
imported only by the steps that use them: each job is a fresh interpreter.
"""

from __future__ import annotations

import html
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.analyses.estimands import AnalysisOptions, OutcomeResult, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame, lod_counts, read_frame, write_frame
from pnitrial.errors import ValidationError
from pnitrial.failures import attempt
from pnitrial.report import render
from pnitrial.report.tables import (
    anova_table,
    effects_readable,
    effects_table,
    emmeans_table,
    fits_table,
    read_results,
    write_csv,
    write_result,
)

log = logging.getLogger("pnitrial")


def log_to(path: str | Path) -> None:
    """Log to the rule's log file and to stderr (so a validation message reaches the user)."""
    fmt = logging.Formatter("%(levelname)s %(message)s")
    log.handlers.clear()
    for h in (logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)):
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)


def validate_data(
    codebook: str, frame_out: str, meta_out: str, lod_out: str, lod_method: str, min_per_arm: int
) -> None:
    try:
        cb = load_codebook(codebook)
        frame, meta = build_long_frame(cb, lod_method=lod_method, min_per_arm=min_per_arm)
    except ValidationError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    write_frame(frame, meta, Path(frame_out), Path(meta_out))
    write_csv(lod_counts(frame, meta), lod_out)
    n = meta["participants"]
    log.info("validated %s: %d outcomes; participants: %s", cb.table.name, len(cb.outcomes), n)


def analysis_options(params) -> AnalysisOptions:
    """AnalysisOptions from a rule's params (ddf, alpha, random_slope, primary, lod_method)."""
    return AnalysisOptions(
        ddf=params.ddf,
        alpha=params.alpha,
        random_slope=params.random_slope,
        primary=params.primary,
        censored=getattr(params, "lod_method", "sqrt2") == "censored",
    )


def fit_outcome(frame_path: str, meta_path: str, outcome: str, out: str, opts: AnalysisOptions) -> None:
    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    res, failed = attempt(f"{outcome} models", analyse_outcome, frame, meta, outcome, opts)
    if failed is not None:
        o = next(x for x in meta["outcomes"] if x["key"] == outcome)
        row = {"outcome": outcome, "family": o["family"], "estimand": "all", "status": "failed", "error": failed[8:]}
        res = OutcomeResult(fits=[row])
    write_result(res, Path(out))
    for fit in res.fits:
        gradient = fit.get("gradient_max")
        log.info(
            "%s %s %s: fit %s (scaled gradient %s)", outcome, fit["estimand"], fit.get("visit"), fit["status"], gradient
        )
        if fit.get("warnings") or fit.get("error"):
            log.warning("%s %s: %s", outcome, fit["estimand"], fit.get("error") or fit.get("warnings"))


def effect_tables(results: list[str], meta_path: str, method: str, out: dict[str, str]) -> None:
    meta = json.loads(Path(meta_path).read_text())
    res = read_results(results)
    eff = write_csv(effects_table(res, method), out["effects"])
    write_csv(emmeans_table(res, meta), out["emmeans"])
    write_csv(fits_table(res), out["fits"])
    write_csv(anova_table(res), out["anova"])
    stem = str(Path(out["effects_md"]).with_suffix(""))
    render.write_all(effects_readable(eff, meta), stem, "Intervention effects (intervention x visit)")
    failed = [f"{f['outcome']}/{f['estimand']}" for r in res for f in r["fits"] if f["status"] != "ok"]
    log.info("gathered %d outcomes; fits not ok: %s", len(res), failed or "none")


def baseline_tables(frame_path: str, meta_path: str, alpha: float, out: dict[str, str]) -> None:
    """Table 1 (keys table1, table1_md) and/or patients vs healthy controls (key baseline), as `out` asks."""
    from pnitrial.analyses.baseline import baseline_vs_healthy
    from pnitrial.report.table1 import table1

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    if "baseline" in out:
        write_csv(baseline_vs_healthy(frame, meta, alpha), out["baseline"])
    if "table1" in out:
        t1 = write_csv(table1(frame, meta), out["table1"])
        render.write_all(t1, str(Path(out["table1_md"]).with_suffix("")), "Table 1. Baseline characteristics")


def effect_sizes_table(effects_path: str, baseline_path: str, frame_path: str, meta_path: str, out: str) -> None:
    """Standardised intervention effects (primary estimand) and Hedges g vs healthy, in one table."""
    from pnitrial.analyses.effect_sizes import effect_sizes

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    base = pd.read_csv(baseline_path) if baseline_path else None
    write_csv(effect_sizes(eff, base, frame, meta), out)


def association_table(
    frame_path: str, meta_path: str, families: tuple[str, str], method: str, alpha: float, min_n: int, out: str
) -> None:
    """Biomarker-symptom correlation matrix under each analysis, FDR over each matrix."""
    from pnitrial.analyses.associations import associations

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    table = associations(frame, meta, families[0], families[1], method, alpha, min_n)
    write_csv(table, out)
    log.info("associations: %d pairs of %s x %s", len(table) // 3, *families)


def association_figure(table_path: str, meta_path: str, stem: str, formats: tuple[str, ...], dpi: int, alpha: float):
    from pnitrial.report.figures import style
    from pnitrial.report.figures.associations import association_heatmap

    meta = json.loads(Path(meta_path).read_text())
    table = pd.read_csv(table_path)
    style.save_or_explain(lambda: association_heatmap(table, meta, alpha), "Associations", stem, formats, dpi)


def sensitivity_analyses(
    frame_path: str, meta_path: str, opts: AnalysisOptions, outliers: str, k: float, out: str
) -> None:
    """Every sensitivity analysis of every outcome's intervention effect at the last visit."""
    from pnitrial.analyses.sensitivity import sensitivity_table

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    table = sensitivity_table(frame, meta, opts, outliers, k)
    write_csv(table, out)
    bad = table[table["status"] != "ok"]
    log.info("sensitivity: %d rows, %d not ok", len(table), len(bad))


def sensitivity_figure(
    table_path: str, meta_path: str, outcome: str, stem: str, formats: tuple[str, ...], dpi: int, alpha: float
) -> None:
    from pnitrial.report.figures import style
    from pnitrial.report.figures.sensitivity import sensitivity_forest

    meta = json.loads(Path(meta_path).read_text())
    table = pd.read_csv(table_path, dtype={"visit": str})
    make = lambda: sensitivity_forest(table, meta, outcome, alpha)  # noqa: E731
    style.save_or_explain(make, f"Sensitivity of {outcome}", stem, formats, dpi)


def diagnostics(
    frame_path: str, meta_path: str, primary: str, random_slope: bool, out: str, figure_dir: str, formats, dpi: int
) -> None:
    """Influence table of every outcome's primary mixed model and one diagnostic figure per outcome."""
    from pnitrial.analyses.diagnostics import COLUMNS, outcome_diagnostics
    from pnitrial.report.figures import style
    from pnitrial.report.figures.diagnostics import diagnostic_panels
    from pnitrial.report.precision import round_array

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    tables = []
    for o in meta["outcomes"]:
        stem = Path(figure_dir) / o["key"]
        got, failed = attempt(
            f"{o['key']} diagnostics", outcome_diagnostics, frame, meta, o["key"], primary, random_slope
        )
        table, arrays = got if failed is None else (pd.DataFrame([{"outcome": o["key"], "fit_status": failed}]), None)
        tables.append(table)
        if arrays is None:
            style.save(style.failed_panel(o["label"], table["fit_status"].iloc[0]), stem, formats, dpi)
            log.warning("%s: %s", o["key"], table["fit_status"].iloc[0])
            continue
        # figures plot the numbers as the policy rounds them, so no last-bit noise moves a pixel
        for name in ("fitted", "residuals", "random_effects", "cooks"):
            arrays[name] = round_array(arrays[name], f"diagnostics/{o['key']}/{name}")
        style.save_or_explain(lambda a=arrays, o=o: diagnostic_panels(o["label"], **a), o["label"], stem, formats, dpi)
        log.info("%s: %d influential participants", o["key"], int(table["influential"].sum()))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    write_csv(table.reindex(columns=COLUMNS), out)


def mediation_analyses(
    frame_path: str,
    meta_path: str,
    settings: dict,
    seed: int,
    alpha: float,
    method: str,
    out: str,
    stem: str,
    formats,
    dpi,
) -> None:
    """Mediation table (every configured mediator x outcome-family pair) and the path diagrams."""
    from pnitrial.analyses.mediation import mediation_table
    from pnitrial.report.figures import style
    from pnitrial.report.figures.mediation import path_diagrams

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    outcomes = [o["key"] for o in meta["outcomes"] if o["family"] == settings["outcome_family"]]
    table = mediation_table(
        frame,
        meta,
        list(settings["mediators"]),
        outcomes,
        settings["bootstrap"],
        seed,
        alpha,
        method,
        settings["min_participants"],
    )
    write_csv(table, out)
    arm = f"{meta['arms']['intervention']} vs {meta['arms']['control']}"
    style.save_or_explain(lambda: path_diagrams(table, meta, arm), "Mediation", stem, formats, dpi)
    for status in sorted(set(table["status"]) - {"ok"}):
        log.warning("mediation: %s", status)


def trajectory_figure(
    frame_path: str,
    meta_path: str,
    emmeans_path: str,
    outcome: str,
    stem: str,
    formats: tuple[str, ...],
    dpi: int,
    alpha: float,
) -> None:
    from pnitrial.report.figures import style, trial

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    em = pd.read_csv(emmeans_path, dtype={"visit": str, "arm": str})
    make = lambda: trial.trajectory(frame, meta, outcome, em, alpha)  # noqa: E731
    style.save_or_explain(make, f"Trajectory of {outcome}", stem, formats, dpi)


def forest_figure(effects_path: str, meta_path: str, stem: str, formats: tuple[str, ...], dpi: int) -> None:
    from pnitrial.report.figures import style, trial

    meta = json.loads(Path(meta_path).read_text())
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    style.save_or_explain(lambda: trial.forest(eff, meta), "Intervention effects", stem, formats, dpi)


def baseline_figure(baseline_path: str, meta_path: str, stem: str, formats: tuple[str, ...], dpi: int) -> None:
    from pnitrial.report.figures import style, trial

    meta = json.loads(Path(meta_path).read_text())
    base = pd.read_csv(baseline_path)
    style.save_or_explain(lambda: trial.baseline_forest(base, meta), "Patients vs healthy", stem, formats, dpi)


def summary(inputs: dict[str, str], config: dict, out: str) -> None:
    """One page for the report: dataset, settings, intervention effects, fit problems, censoring."""
    meta = json.loads(Path(inputs["meta"]).read_text())
    # a panel-only trial has no outcome tables: the summary is the panel's
    eff = pd.read_csv(inputs["effects"], dtype={"visit": str}) if inputs.get("effects") else None
    fits = pd.read_csv(inputs["fits"]) if inputs.get("fits") else pd.DataFrame(columns=["status"])
    lod = pd.read_csv(inputs["lod"])
    n = meta["participants"]
    settings = [
        ("Dataset", meta["name"]),
        (
            "Participants",
            f"{meta['arms']['intervention']} {n['intervention']}, {meta['arms']['control']} {n['control']}, "
            + (
                f"{meta['arms']['healthy']} {n['healthy']}"
                if meta["arms"].get("healthy")
                else "no healthy control group (so no patients-vs-healthy comparison is made)"
            ),
        ),
        ("Visits", ", ".join(meta["visits"])),
        (
            "Model",
            "REML linear mixed model, arm x visit"
            + "".join(f" + {c}" for c in meta["covariates"])
            + ", random participant intercept"
            + (" and time slope" if config["model"]["random_slope"] else ""),
        ),
        ("Primary estimand", config["analysis"]["primary"]),
        ("Denominator df", config["inference"]["ddf"]),
        ("Multiplicity", f"{config['multiplicity']['method']} within each outcome family"),
        (
            "Below-LOD values",
            (
                "left-censored in the primary cLDA (ML), LOD/sqrt(2) elsewhere; "
                if config["lod"]["method"] == "censored"
                else f"substituted ({config['lod']['method']}); "
            )
            + f"{int(lod['n_below_lod'].sum())} of {int(lod['n'].sum())} assay results",
        ),
    ]
    problems = fits[fits["status"] != "ok"].reindex(
        columns=["outcome", "estimand", "visit", "status", "warnings", "error"]
    )
    parts = ["<h1>pnitrial analysis summary</h1>", "<table>"]
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings]
    parts.append("</table>")
    if eff is not None:
        parts.append(render.html_table(effects_readable(eff, meta), "Intervention effects"))
        parts.append("<h2>Fits that need attention</h2>")
        if problems.empty:
            parts.append("<p>All models converged with positive variance components.</p>")
        else:
            parts.append(render.html_table(problems.astype(object).fillna(""), ""))
    else:
        parts.append("<p>The codebook declares no trial outcomes: the analysis is the panel's alone.</p>")
    parts += _failure_summary(inputs)
    if inputs.get("effect_sizes"):
        parts += _effect_size_summary(inputs["effect_sizes"])
    if inputs.get("permutation"):
        parts += _permutation_summary(inputs["permutation"])
    if inputs.get("sensitivity"):
        parts += _sensitivity_summary(inputs["sensitivity"], config["inference"]["alpha"])
    if inputs.get("diagnostics"):
        parts += _diagnostics_summary(inputs["diagnostics"])
    if inputs.get("mediation"):
        parts += _mediation_summary(inputs["mediation"])
    if inputs.get("associations"):
        parts += _association_summary(inputs["associations"], config["inference"]["alpha"])
    if inputs.get("panel"):
        parts += _panel_summary(*inputs["panel"], alpha=config["inference"]["alpha"])
    Path(out).write_text(render.html_page("pnitrial summary", "\n".join(parts) + "\n"), encoding="utf-8")


STATUS_COLUMNS = ("status", "fit_status")


def _failure_summary(inputs: dict[str, str]) -> list[str]:
    """Every analysis of every table that failed or could not be estimated, with its reason."""
    rows = []
    for path in (inputs[k] for k in sorted(inputs)):
        if not isinstance(path, str) or not path.endswith(".csv") or not Path(path).exists():
            continue
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        col = next((c for c in STATUS_COLUMNS if c in table), None)
        if col is None:
            continue
        bad = table[table[col].str.startswith(("failed", "not estimable"))]
        for (outcome, status), g in bad.groupby([bad.get("outcome", pd.Series("", index=bad.index)), col]):
            rows.append({"table": Path(path).name, "outcome": outcome, "rows": len(g), "reason": status})
    head = "<h2>Analyses that failed</h2>"
    if not rows:
        return [head, "<p>None: every analysis of every outcome finished.</p>"]
    note = "<p>Each is a row of its table with this status; everything else finished. Details in results/logs/.</p>"
    return [head, note, render.html_table(pd.DataFrame(rows), "")]


def _ci_text(v: float, lo: float, hi: float) -> str:
    return "" if pd.isna(v) else f"{v:.2f} ({lo:.2f} to {hi:.2f})"


def _effect_size_summary(path: str) -> list[str]:
    es = pd.read_csv(path, dtype={"visit": str})
    std = es[es["effect_size"] == "standardised difference"]
    g = es[es["effect_size"] == "Hedges g"].set_index("outcome")
    shown = pd.DataFrame(
        {
            "outcome": std["outcome"],
            "visit": std["visit"],
            "standardised difference (CI)": [_ci_text(*r) for r in std[["value", "ci_low", "ci_high"]].to_numpy()],
            "Hedges g patients vs healthy (CI)": [
                _ci_text(*g.loc[k, ["value", "ci_low", "ci_high"]]) if k in g.index else "" for k in std["outcome"]
            ],
        }
    )
    return [
        "<h2>Effect sizes</h2>",
        "<p>Intervention effect of the primary estimand over the pooled baseline SD (model scale), "
        "and Hedges g for patients versus healthy controls at baseline.</p>",
        render.html_table(shown, ""),
    ]


def _sensitivity_summary(path: str, alpha: float) -> list[str]:
    sens = pd.read_csv(path, dtype={"visit": str})
    rows = []
    for key, g in sens.groupby("outcome", sort=False):
        prim, rest = g.iloc[0], g.iloc[1:]
        ok = rest[rest["estimate"].notna()]
        same_sign = int((np.sign(ok["estimate"]) == np.sign(prim["estimate"])).sum())
        rows.append(
            {
                "outcome": key,
                "primary (CI)": _ci_text(prim["estimate"], prim["ci_low"], prim["ci_high"]),
                "sensitivity estimates": f"{ok['estimate'].min():.3g} to {ok['estimate'].max():.3g}" if len(ok) else "",
                "same direction": f"{same_sign} of {len(rest)}",
                f"p < {alpha:g}": f"{int((g['p'] < alpha).sum())} of {len(g)}",
                "not ok": int((g["status"] != "ok").sum()),
            }
        )
    return [
        "<h2>Sensitivity</h2>",
        "<p>Intervention effect at the last visit under each sensitivity analysis "
        "(complete cases, outliers, below-LOD substitution, mixed ANOVA, Hodges-Lehmann); "
        "one forest plot per outcome in figures/sensitivity/.</p>",
        render.html_table(pd.DataFrame(rows), ""),
    ]


def _diagnostics_summary(path: str) -> list[str]:
    diag = pd.read_csv(path)
    rows = []
    for key, g in diag.groupby("outcome", sort=False):
        top = g.iloc[0]
        rows.append(
            {
                "outcome": key,
                "influential participants": f"{int(g['influential'].isin([True, 'True']).sum())} of {len(g)}",
                "largest Cook's distance": "" if pd.isna(top["cooks_distance"]) else f"{top['cooks_distance']:.3g}",
                "its effect on the intervention effect": ""
                if pd.isna(top["interaction_change"])
                else f"{top['interaction_change']:+.3g}",
                "status": "ok" if (g["fit_status"] == "ok").all() else "; ".join(sorted(set(g["fit_status"]) - {"ok"})),
            }
        )
    return [
        "<h2>Diagnostics</h2>",
        "<p>Participant influence on the primary mixed model (deletion and refit; threshold 4/m); "
        "residual and random-effect plots per outcome in figures/diagnostics/.</p>",
        render.html_table(pd.DataFrame(rows), ""),
    ]


def _mediation_summary(path: str) -> list[str]:
    med = pd.read_csv(path)
    head = "<h2>Mediation</h2>"
    if med.empty:
        return [head, "<p>No mediator-outcome pairs configured (config mediation).</p>"]
    ind = med[med["path"] == "a*b (indirect)"]
    shown = pd.DataFrame(
        {
            "mediator": ind["mediator"],
            "outcome": ind["outcome"],
            "indirect a*b (bootstrap CI)": [_ci_text(*r) for r in ind[["estimate", "ci_low", "ci_high"]].to_numpy()],
            "p_fdr": ind["p_fdr"].map(lambda v: f"{v:.3g}"),
        }
    )
    bad = med[med["status"] != "ok"][["mediator", "outcome", "status"]].drop_duplicates()
    parts = [
        head,
        "<p>Arm -> change in mediator -> change in outcome, adjusted for both baselines; "
        "indirect effects with bias-corrected bootstrap intervals.</p>",
        render.html_table(shown, ""),
    ]
    if not bad.empty:
        parts.append(render.html_table(bad, "Pairs not analysed"))
    return parts


def _association_summary(path: str, alpha: float) -> list[str]:
    assoc = pd.read_csv(path)
    if assoc.empty:
        return ["<h2>Biomarker-symptom associations</h2>", "<p>No biomarker-symptom pairs in this codebook.</p>"]
    counts = [
        f"{a}: {int((g['p_fdr'] < alpha).sum())} of {len(g)} pairs" for a, g in assoc.groupby("analysis", sort=False)
    ]
    top = assoc.sort_values(["p", "analysis", "biomarker", "clinical"], kind="stable").head(10)
    top = top[["analysis", "biomarker", "clinical", "r", "p", "p_fdr"]].copy()
    for c in ("r", "p", "p_fdr"):
        top[c] = top[c].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    return [
        "<h2>Biomarker-symptom associations</h2>",
        f"<p>FDR-adjusted p &lt; {alpha:g}: {html.escape('; '.join(counts))}. Smallest p:</p>",
        render.html_table(top, ""),
    ]


def _permutation_summary(path: str) -> list[str]:
    perm = pd.read_csv(path, dtype={"visit": str})
    if perm.empty:
        return []
    b = int(perm["rerandomisations"].dropna().max()) if perm["rerandomisations"].notna().any() else 0
    cols = ["outcome", "contrast", "estimate", "p_model", "p_permutation", "mc_se", "fit_status"]
    shown = perm.reindex(columns=cols).copy()
    for c in ("estimate", "p_model", "p_permutation", "mc_se"):
        shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    return [
        "<h2>Randomisation inference</h2>",
        f"<p>Arm labels re-randomised {b} times (arm sizes kept) for the {html.escape(str(perm['estimand'].iloc[0]))} "
        "intervention effect; permutation p with its Monte-Carlo SE next to the model p.</p>",
        render.html_table(shown.fillna(""), ""),
    ]


def _panel_summary(top_path: str, panel_meta: str, alpha: float) -> list[str]:
    pmeta = json.loads(Path(panel_meta).read_text())
    top = pd.read_csv(top_path, dtype={"visit": str})
    hits = int((top["p_fdr"] < alpha).sum())
    more = " (at least; the table shows the top analytes only)" if hits == len(top) else ""
    return [
        f"<h2>{html.escape(pmeta['label'])}</h2>",
        f"<p>{len(pmeta['analytes'])} analytes, {pmeta['n_missing']} missing values; "
        f"{hits}{more} with FDR-adjusted p &lt; {alpha:g} for the primary intervention effect.</p>",
        render.html_table(top.head(10).fillna(""), "Top analytes"),
    ]


def validate_panel(codebook: str, out: dict[str, str], min_per_arm: int) -> None:
    from pnitrial.data.panel import build_panel_frame, write_panel

    try:
        cb = load_codebook(codebook)
        rows, values, pmeta = build_panel_frame(cb, min_per_arm=min_per_arm)
    except ValidationError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    write_panel(rows, values, pmeta, out)
    log.info(
        "validated panel %s: %d analytes, %d rows, %d missing values",
        cb.panel.table.name,
        len(pmeta["analytes"]),
        pmeta["n_rows"],
        pmeta["n_missing"],
    )


def fit_panel_chunk(
    inputs: dict[str, str], chunk: int, chunks: int, opts: AnalysisOptions, out: dict[str, str]
) -> None:
    """One contiguous slice of the analytes, fitted in one batched call."""
    from pnitrial.analyses.panel import analyse_panel
    from pnitrial.data.panel import chunk_analytes, read_panel

    meta = json.loads(Path(inputs["meta"]).read_text())
    rows, values, pmeta = read_panel(inputs["rows"], inputs["values"], inputs["panel_meta"], meta["covariates"])
    cols = chunk_analytes(len(pmeta["analytes"]), chunks, chunk)
    part = dict(pmeta, analytes=[pmeta["analytes"][j] for j in cols])
    eff, fits = analyse_panel(rows, values[:, cols], meta, part, opts)
    for df, path in ((eff, out["effects"]), (fits, out["fits"])):
        write_csv(df, path)
    log.info("largest scaled gradient at the optima: %.3g", fits["gradient_max"].max())
    bad = fits[fits["status"] != "ok"]
    log.info("chunk %d of %d: %d analytes; fits not ok: %d", chunk + 1, chunks, len(cols), len(bad))
    for r in bad.itertuples():
        log.warning("%s %s: %s %s", r.outcome, r.estimand, r.status, r.error if isinstance(r.error, str) else "")


def panel_tables(
    effects: list[str], fits: list[str], meta_path: str, panel_meta: str, method: str, top_n: int, out: dict[str, str]
) -> None:
    from pnitrial.report.tables import panel_effects_table, panel_top_table

    pmeta = json.loads(Path(panel_meta).read_text())
    eff = pd.concat([pd.read_csv(p, dtype={"visit": str}) for p in effects], ignore_index=True)
    eff = write_csv(panel_effects_table(eff, method), out["effects"])
    fit = pd.concat([pd.read_csv(p) for p in fits], ignore_index=True)
    write_csv(fit, out["fits"])
    top = write_csv(panel_top_table(eff, top_n), out["top"])
    render.write_all(top, str(Path(out["top_md"]).with_suffix("")), f"{pmeta['label']}: top {len(top)} analytes")
    log.info("gathered %d analytes from %d chunks", len(pmeta["analytes"]), len(effects))


def panel_figures(
    effects_path: str, panel_meta: str, alpha: float, top_n: int, stems: dict[str, str], formats, dpi: int
) -> None:
    from pnitrial.report.figures.panel import top_forest, volcano
    from pnitrial.report.figures.style import save_or_explain

    pmeta = json.loads(Path(panel_meta).read_text())
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    save_or_explain(lambda: volcano(eff, pmeta, alpha), pmeta["label"], stems["volcano"], formats, dpi)
    save_or_explain(lambda: top_forest(eff, pmeta, top_n, alpha), pmeta["label"], stems["forest"], formats, dpi)


def permutation_tests(
    frame_path: str, meta_path: str, effects_path: str, primary: str, B: int, seed: int, method: str, out: str
) -> None:
    """Permutation p of the primary mixed-model estimand for every outcome, next to the model p."""
    from pnitrial.analyses.permutation import permutation_test
    from pnitrial.inference.multiplicity import adjust_within

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    estimand = primary if primary in ("clda", "lmm") else "clda"
    rows = []
    cols = ["outcome", "family", "estimand", "contrast", "visit", "estimate", "wald_t", "p_model", "ddf_method"]
    cols += ["p_permutation", "mc_se", "p_permutation_adjusted", "p_adjust_method", "rerandomisations"]
    cols += ["rerandomisations_fitted", "n_intervention", "n_control", "seed", "fit_status"]
    for o in meta["outcomes"]:
        got, failed = attempt(f"{o['key']} permutation test", permutation_test, frame, meta, o, estimand, B, seed)
        rows += got if failed is None else [{"outcome": o["key"], "family": o["family"], "fit_status": failed}]
    table = pd.DataFrame(rows, columns=[c for c in cols if c not in ("p_model", "ddf_method", "p_adjust_method")])
    table["contrast"] = table["contrast"].astype(object)
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    model = eff[(eff["estimand"] == estimand) & (eff["scale"] == "model")][["outcome", "contrast", "p", "ddf_method"]]
    table = table.merge(model.rename(columns={"p": "p_model"}), on=["outcome", "contrast"], how="left")
    table = adjust_within(table, "p_permutation", ["family", "contrast"], method, "p_permutation_adjusted")
    write_csv(table.reindex(columns=cols), out)
    log.info("permutation tests: %d outcomes, %d re-randomisations each, seed %d", len(meta["outcomes"]), B, seed)


def manifest(files: list[str], root: str, out: str) -> None:
    from pnitrial.report.provenance import write_manifest

    write_manifest(files, root, out)
    log.info("manifest of %d files written to %s", len(files), out)


def verify(results: str, expected: str, mode: str = "bytes") -> None:
    """Fail, explaining every difference, when results/ differ from the expected snapshot."""
    from pnitrial.report.verification import verify_results

    diffs = verify_results(results, expected, mode)
    if diffs:
        log.error("results differ from %s (%s mode):\n%s", expected, mode, "\n".join(diffs))
        log.error("if the change is deliberate, refresh the expectation (README: Reproducibility)")
        raise SystemExit(1)
    if mode == "bytes":
        log.info("verified: results are byte-identical to %s", expected)
    else:
        log.info("verified: results agree with %s within the stated tolerances", expected)


def provenance(config: dict, inputs: dict[str, str], workflow_dir: str, out: str) -> None:
    from pnitrial.report.provenance import write_provenance

    write_provenance(config, inputs, workflow_dir, out)
