"""Workflow steps as plain functions of paths and options (the Snakemake scripts call these).

Each step reads files, computes, and writes its outputs; nothing here imports
Snakemake, so every step can be run and tested on its own. Plotting and pingouin are
imported only by the steps that use them: each job is a fresh interpreter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame, lod_counts, read_frame, write_frame
from pnitrial.data.trial import Trial
from pnitrial.errors import ValidationError
from pnitrial.failures import attempt, log_to  # noqa: F401 - log_to: called by every workflow script
from pnitrial.progress import track
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

if TYPE_CHECKING:  # the model stack (scipy.stats and the engines) is imported only by the jobs that fit
    from pnitrial.analyses.estimands import AnalysisOptions

log = logging.getLogger("pnitrial")


def validate_data(
    codebook: str,
    frame_out: str,
    meta_out: str,
    lod_out: str,
    lod_method: str,
    min_per_arm: int,
    ice_out: str | None = None,
) -> None:
    """Validate codebook, table and any intercurrent-event table, then write the long frame, meta.json,
    the pseudonymised events (``pid, visit, strategy``; header only without a table) and the below-LOD counts."""
    from pnitrial.data.ice import read_ice
    from pnitrial.data.table import read_table

    try:
        cb = load_codebook(codebook)
        frame, meta = build_long_frame(cb, lod_method=lod_method, min_per_arm=min_per_arm)
        ice = read_ice(cb, read_table(cb.table)) if cb.ice is not None else None
    except ValidationError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None
    if ice_out is not None:
        from pnitrial.data.ice import ICE_COLUMNS

        (ice if ice is not None else pd.DataFrame(columns=ICE_COLUMNS)).to_csv(
            ice_out, index=False, lineterminator="\n"
        )
    write_frame(frame, meta, Path(frame_out), Path(meta_out))
    write_csv(lod_counts(frame, meta), lod_out)
    n = meta.participants
    log.info("validated %s: %d outcomes; participants: %s", cb.table.name, len(cb.outcomes), n)


def analysis_options(params) -> AnalysisOptions:
    """AnalysisOptions from a rule's params."""
    from pnitrial.analyses.estimands import AnalysisOptions

    return AnalysisOptions.from_params(params)


def fit_outcome(frame_path: str, meta_path: str, outcome: str, out: str, opts: AnalysisOptions) -> None:
    """Every estimand of one outcome, written as its JSON result (a failure is a row)."""
    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    from pnitrial.analyses.estimands import OutcomeResult, analyse_outcome

    res, failed = attempt(f"{outcome} models", analyse_outcome, frame, meta, outcome, opts)
    if failed is not None:
        o = meta.outcome(outcome)
        row = {"outcome": outcome, "family": o.family, "estimand": "all", "status": "failed", "error": failed[8:]}
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
    """Gather the per-outcome results into the effects, fits, EMM and ANOVA tables and their readable forms."""
    meta = Trial.read(meta_path)
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
        render.write_all(t1, str(Path(out["table1_md"]).with_suffix("")), "Baseline characteristics by group")


def participant_flow(
    frame_path: str, meta_path: str, fits_path: str, primary: str, out: dict[str, str], stem: str, formats, dpi: int
) -> None:
    """CONSORT participant flow: the table (keys flow, flow_md) and its diagram (stem.<format>)."""
    from pnitrial.report.figures import style
    from pnitrial.report.figures.flow import flow_diagram
    from pnitrial.report.flow import flow_readable, flow_table

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    fits = pd.read_csv(fits_path, dtype={"visit": str})
    table = write_csv(flow_table(frame, meta, fits, primary), out["flow"])
    title = "Participant flow (CONSORT 2010 item 13)"
    render.write_all(flow_readable(table, meta), str(Path(out["flow_md"]).with_suffix("")), title)
    style.save_or_explain(lambda: flow_diagram(table, meta), "Participant flow", stem, formats, dpi)
    randomised = table.loc[table["stage"] == "randomised", "n"].tolist()
    log.info("participant flow: %s randomised, enrolled %s", randomised, meta.enrolled or "not given")


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

    meta = Trial.read(meta_path)
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


def covariance_comparison(
    frame_path: str, meta_path: str, structures: list[str], opts: AnalysisOptions, out: str
) -> None:
    """logLik, AIC and BIC of each listed covariance structure, every outcome's lmm and cLDA models."""
    from pnitrial.analyses.covariance_compare import compare_covariances

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    table = compare_covariances(frame, meta, list(structures), opts)
    write_csv(table, out)
    log.info("covariance comparison: %d fits, %d not ok", len(table), int((table["status"] != "ok").sum()))


def sensitivity_figure(
    table_path: str, meta_path: str, outcome: str, stem: str, formats: tuple[str, ...], dpi: int, alpha: float
) -> None:
    """One outcome's sensitivity forest drawn from the sensitivity table."""
    from pnitrial.report.figures import style
    from pnitrial.report.figures.sensitivity import sensitivity_forest

    meta = Trial.read(meta_path)
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
    for o in track(meta.outcomes, len(meta.outcomes), "diagnostics"):
        stem = Path(figure_dir) / o.key
        got, failed = attempt(f"{o.key} diagnostics", outcome_diagnostics, frame, meta, o.key, primary, random_slope)
        table, arrays = got if failed is None else (pd.DataFrame([{"outcome": o.key, "fit_status": failed}]), None)
        tables.append(table)
        if arrays is None:
            style.save(style.failed_panel(o.label, table["fit_status"].iloc[0]), stem, formats, dpi)
            log.warning("%s: %s", o.key, table["fit_status"].iloc[0])
            continue
        # figures plot the numbers as the policy rounds them, so no last-bit noise moves a pixel
        for name in ("fitted", "residuals", "random_effects", "cooks"):
            arrays[name] = round_array(arrays[name], f"diagnostics/{o.key}/{name}")
        style.save_or_explain(
            lambda a=arrays, o=o: diagnostic_panels(o.label, **a, scale="log" if o.is_log else ""),
            o.label,
            stem,
            formats,
            dpi,
        )
        log.info("%s: %d influential participants", o.key, int(table["influential"].sum()))
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
    outcomes = [o.key for o in meta.outcomes if o.family == settings["outcome_family"]]
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
    arm = f"{meta.arms['intervention']} vs {meta.arms['control']}"
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
    """One outcome's trajectories (raw data and EMMs per arm and visit)."""
    from pnitrial.report.figures import style, trial

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    em = pd.read_csv(emmeans_path, dtype={"visit": str, "arm": str})
    make = lambda: trial.trajectory(frame, meta, outcome, em, alpha)  # noqa: E731
    style.save_or_explain(make, f"Trajectory of {outcome}", stem, formats, dpi)


def forest_figure(
    effects_path: str, effect_sizes_path: str, meta_path: str, stem: str, formats: tuple[str, ...], dpi: int
) -> None:
    """The forest plot of every outcome's intervention effects."""
    from pnitrial.report.figures import style, trial

    meta = Trial.read(meta_path)
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    sizes = pd.read_csv(effect_sizes_path, dtype={"visit": str})
    style.save_or_explain(lambda: trial.forest(eff, meta, sizes), "Intervention effects", stem, formats, dpi)


def baseline_figure(baseline_path: str, meta_path: str, stem: str, formats: tuple[str, ...], dpi: int) -> None:
    """The patients vs healthy controls forest at baseline."""
    from pnitrial.report.figures import style, trial

    meta = Trial.read(meta_path)
    base = pd.read_csv(baseline_path)
    style.save_or_explain(lambda: trial.baseline_forest(base, meta), "Patients vs healthy", stem, formats, dpi)


def summary(inputs: dict[str, str], config: dict, out: str) -> None:
    """One page for the report: dataset, settings, intervention effects, what failed, each analysis."""
    from pnitrial.report.summary import write_summary

    write_summary(inputs, config, out)


def validate_panel(codebook: str, out: dict[str, str], min_per_arm: int) -> None:
    """Validate the panel table against the trial and write its rows, values and panel meta."""
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

    meta = Trial.read(inputs["meta"])
    rows, values, pmeta = read_panel(inputs["rows"], inputs["values"], inputs["panel_meta"], meta.covariates)
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
    """Gather the panel's chunks into its effects, fits and top-N tables (FDR across the panel)."""
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
    """The panel's volcano plot and its top-N forest."""
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
    for o in track(meta.outcomes, len(meta.outcomes), f"permutation tests ({B} re-randomisations each)"):
        got, failed = attempt(f"{o.key} permutation test", permutation_test, frame, meta, o, estimand, B, seed)
        rows += got if failed is None else [{"outcome": o.key, "family": o.family, "fit_status": failed}]
    table = pd.DataFrame(rows, columns=[c for c in cols if c not in ("p_model", "ddf_method", "p_adjust_method")])
    table["contrast"] = table["contrast"].astype(object)
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    model = eff[(eff["estimand"] == estimand) & (eff["scale"] == "model")][["outcome", "contrast", "p", "ddf_method"]]
    table = table.merge(model.rename(columns={"p": "p_model"}), on=["outcome", "contrast"], how="left")
    table = adjust_within(table, "p_permutation", ["family", "contrast"], method, "p_permutation_adjusted")
    write_csv(table.reindex(columns=cols), out)
    log.info("permutation tests: %d outcomes, %d re-randomisations each, seed %d", len(meta.outcomes), B, seed)


def missing_data(
    frame_path: str,
    meta_path: str,
    strategies: tuple[str, ...],
    delta_sd: tuple[float, ...],
    delta: tuple[float, ...],
    alpha: float,
    structures: tuple[str, ...],
    out: dict[str, str],
    stem: str,
    formats: tuple[str, ...],
    dpi: int,
    max_participants: int = 2000,
    ice_path: str | None = None,
    outcome_stems: dict[str, str] | None = None,
) -> None:
    """Reference-based imputation under each strategy (and an ICE table's), tipping points, the figures.

    The figure at `stem` has a panel per outcome; `outcome_stems` (outcome -> stem) adds one per outcome.
    """
    from pnitrial.analyses.reference_based import missing_data_analysis
    from pnitrial.report.figures import style
    from pnitrial.report.figures.missing_data import tipping_point_figure

    frame, meta = read_frame(Path(frame_path), Path(meta_path))
    ice = pd.read_csv(ice_path, dtype={"visit": str, "strategy": str}) if ice_path else None
    effects, tipping = missing_data_analysis(
        frame, meta, strategies, delta_sd, delta, alpha, structures, max_participants, ice
    )
    effects = write_csv(effects, out["effects"])
    tipping = write_csv(tipping, out["tipping"])
    make = lambda: tipping_point_figure(effects, tipping, meta, alpha)  # noqa: E731
    style.save_or_explain(make, "Tipping point", stem, formats, dpi)
    outcome_stems = outcome_stems or {}
    for key, outcome_stem in track(outcome_stems.items(), len(outcome_stems), "tipping-point figures", "figures"):
        mine = effects[effects["outcome"] == key]
        make = lambda mine=mine: tipping_point_figure(mine, tipping, meta, alpha)  # noqa: E731
        style.save_or_explain(make, f"{meta.outcome(key).label} tipping point", outcome_stem, formats, dpi)
    for status in sorted(set(effects["status"].dropna()) - {"ok"}):
        log.warning("reference-based imputation: %s", status)


def manifest(files: list[str], root: str, out: str) -> None:
    """Write results/MANIFEST.sha256 over every hashed output."""
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
    """Write provenance.json: versions, platform, config, input hashes and seed (not hashed)."""
    from pnitrial.report.provenance import write_provenance

    write_provenance(config, inputs, workflow_dir, out)
