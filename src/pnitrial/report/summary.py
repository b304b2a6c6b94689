"""The one-page HTML summary of a run: settings, effects, what failed and why, each further analysis.

Everything on the page is read from the written tables, so it shows the numbers as results/ holds them.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.data.trial import Trial
from pnitrial.report import render
from pnitrial.report.numbers import decimals_for, effect_text, number, p_value
from pnitrial.report.tables import effects_readable

__all__ = ["write_summary"]


def write_summary(inputs: dict[str, str], config: dict, out: str) -> None:
    """Write the one-page HTML summary of a run: dataset, settings, intervention effects, fit problems, censoring.

    Further sections follow for every table given: failed analyses, effect sizes, permutation
    tests, sensitivity analyses, diagnostics, mediation, associations and the panel.

    Parameters
    ----------
    inputs : dict
        Paths of the written inputs: ``meta`` (meta.json) and ``lod`` (lod_counts.csv) always;
        ``effects`` and ``fits`` unless the trial is panel-only; optionally ``effect_sizes``,
        ``permutation``, ``sensitivity``, ``diagnostics``, ``mediation``, ``associations`` and
        ``panel`` (the panel's top table and metadata).
    config : dict
        The run's configuration (model, analysis, inference, multiplicity and lod settings).
    out : str
        The HTML file to write.

    Examples
    --------
    >>> import tempfile
    >>> from pnitrial.data.codebook import Outcome
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1)
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"),
    ...              outcomes=(crp,), participants={"intervention": 20, "control": 20, "healthy": 0})
    >>> config = {"model": {"reml": True, "random_slope": False}, "analysis": {"primary": "clda"},
    ...           "inference": {"ddf": "kenward-roger", "alpha": 0.05}, "multiplicity": {"method": "bh"},
    ...           "lod": {"method": "censored"}}
    >>> tables = {
    ...     "effects": pd.DataFrame({"outcome": ["crp"], "estimand": ["clda"], "primary": [True],
    ...                              "contrast": ["interaction:post"], "visit": ["post"], "scale": ["ratio"],
    ...                              "estimate": [0.8], "ci_low": [0.66], "ci_high": [0.97], "df": [38.1],
    ...                              "p": [0.027], "p_fdr": [0.027], "fit_status": ["ok"]}),
    ...     "fits": pd.DataFrame({"outcome": ["crp"], "estimand": ["clda"], "covariance": ["random-intercept"],
    ...                           "status": ["ok"]}),
    ...     "lod": pd.DataFrame({"outcome": ["crp"], "n": [80], "n_below_lod": [6]}),
    ... }
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     inputs = {"meta": str(Path(tmp) / "meta.json")}
    ...     _ = Path(inputs["meta"]).write_text(meta.to_json())
    ...     for name, table in tables.items():
    ...         inputs[name] = str(Path(tmp) / f"{name}.csv")
    ...         table.to_csv(inputs[name], index=False)
    ...     write_summary(inputs, config, str(Path(tmp) / "summary.html"))
    ...     page = (Path(tmp) / "summary.html").read_text()
    >>> "REML linear mixed model, arm x visit; random participant intercept" in page
    True
    >>> "<td>0.800 [0.660, 0.970]</td>" in page, "6 of 80 assay results" in page
    (True, True)
    """
    meta = Trial.read(inputs["meta"])
    # a panel-only trial has no outcome tables: the summary is the panel's
    eff = pd.read_csv(inputs["effects"], dtype={"visit": str}) if inputs.get("effects") else None
    fits = pd.read_csv(inputs["fits"]) if inputs.get("fits") else pd.DataFrame(columns=["status"])
    lod = pd.read_csv(inputs["lod"])
    n = meta.participants
    settings = [
        ("Dataset", meta.name),
        (
            "Participants",
            f"{meta.arms['intervention']} {n['intervention']}, {meta.arms['control']} {n['control']}, "
            + (
                f"{meta.arms['healthy']} {n['healthy']}"
                if meta.arms.get("healthy")
                else "no healthy control group (so no patients-vs-healthy comparison is made)"
            ),
        ),
        ("Visits", ", ".join(meta.visits)),
        ("Model", _model_text(meta, config, fits)),
        ("Primary estimand", _primary_text(meta, eff) if eff is not None else config["analysis"]["primary"]),
        ("Denominator df", DDF_NAMES.get(config["inference"]["ddf"], config["inference"]["ddf"])),
        ("Multiplicity", _multiplicity_text(meta, config["multiplicity"]["method"])),
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
        parts.append(f"<p>{html.escape(_methods_text(meta, config, eff))}</p>")
    parts += _figure(inputs.get("flow_png"), "Participant flow (CONSORT 2010 item 13).")
    if eff is not None:
        parts.append(render.html_table(effects_readable(eff, meta), "Intervention effects"))
        parts += _figure(
            inputs.get("forest_png"),
            "Intervention effects under every estimand: ratios for log-transformed outcomes, standardised "
            "differences (pooled baseline SD) otherwise, with the primary effect in instrument units.",
        )
        parts.append("<h2>Fits that need attention</h2>")
        if problems.empty:
            parts.append("<p>All models converged with positive variance components.</p>")
        else:
            parts.append(render.html_table(problems.astype(object).fillna(""), ""))
        parts += _fallback_summary(fits)
        parts += _trajectories(inputs.get("trajectory_png") or [], meta)
    else:
        parts.append("<p>The codebook declares no trial outcomes: the analysis is the panel's alone.</p>")
    parts += _failure_summary(inputs)
    if inputs.get("effect_sizes"):
        parts += _effect_size_summary(inputs["effect_sizes"], meta)
    if inputs.get("permutation"):
        parts += _permutation_summary(inputs["permutation"], meta)
    if inputs.get("covariance_compare"):
        parts += _covariance_compare_summary(inputs["covariance_compare"], meta)
    if inputs.get("missing_data") and inputs.get("tipping_point"):
        parts += _missing_data_summary(inputs["missing_data"], inputs["tipping_point"], meta)
        parts += _figure(inputs.get("tipping_png"), "MAR tipping point: the effect at the last visit as delta grows.")
    if inputs.get("sensitivity"):
        parts += _sensitivity_summary(inputs["sensitivity"], meta, config["inference"]["alpha"])
    if inputs.get("diagnostics"):
        parts += _diagnostics_summary(inputs["diagnostics"], meta)
    if inputs.get("mediation"):
        parts += _mediation_summary(inputs["mediation"], meta)
    if inputs.get("associations"):
        parts += _association_summary(inputs["associations"], meta, config["inference"]["alpha"])
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


DDF_NAMES = {
    "kenward-roger": "Kenward-Roger (adjusted covariance and df; pbkrtest)",
    "satterthwaite": "Satterthwaite (lmerTest)",
    "asymptotic": "none: asymptotic z tests and normal intervals",
}
ADJUST_NAMES = {"bh": "Benjamini-Hochberg", "by": "Benjamini-Yekutieli", "holm": "Holm", "none": "none"}
ESTIMAND_TEXT = {
    "clda": "cLDA",
    "clda_censored": "cLDA censored at the LOD",
    "lmm": "LMM arm x visit",
    "ancova": "ANCOVA",
}


def _labels(meta: Trial) -> dict[str, str]:
    return {o.key: o.label for o in meta.outcomes}


def _label_column(df: pd.DataFrame, meta: Trial, *columns: str) -> pd.DataFrame:
    """Outcome keys replaced by the codebook's labels in these columns."""
    labels = _labels(meta)
    return df.assign(**{c: df[c].map(lambda k: labels.get(k, k)) for c in columns if c in df})


def _ci_text(v: float, lo: float, hi: float) -> str:
    return effect_text(_num(v), _num(lo), _num(hi))


def _num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _ratio_if_log(meta: Trial, key: str, *values: float) -> list[float | None]:
    """Model-scale values on the scale the outcome is reported on: ratios for log outcomes."""
    keys = {o.key: o for o in meta.outcomes}
    log_scale = key in keys and keys[key].is_log
    return [None if _num(v) is None else (float(np.exp(v)) if log_scale else float(v)) for v in values]


def _figure(path: str | None, caption: str) -> list[str]:
    """A PNG written by the run, inlined (base64) so the page stands alone in the Snakemake report."""
    if not path or not Path(path).exists():
        return []
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return [
        f'<figure><img style="max-width:100%" alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    ]


def _trajectories(paths: list[str], meta: Trial) -> list[str]:
    if not paths:
        return []
    labels = _labels(meta)
    cells = []
    for path in paths:
        key = Path(path).stem
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        cells.append(
            f'<img style="width:32%" alt="Trajectory of {html.escape(labels.get(key, key))}" '
            f'src="data:image/png;base64,{data}">'
        )
    return [
        "<h2>Trajectories</h2>",
        "<p>Participants (faint lines) and estimated marginal means of each outcome's primary model by arm "
        "and visit, with the healthy-control baseline band.</p>",
        "<div>" + "".join(cells) + "</div>",
    ]


def _primary_text(meta: Trial, eff: pd.DataFrame) -> str:
    """Which estimand is primary for how many outcomes (the censored cLDA where values are below the LOD)."""
    labels = _labels(meta)
    prim = eff[eff["primary"].astype(bool)].drop_duplicates("outcome")
    parts = []
    for estimand, g in prim.groupby("estimand", sort=False):
        names = f": {', '.join(labels.get(k, k) for k in g['outcome'])}" if estimand == "clda_censored" else ""
        n = len(g)
        parts.append(f"{ESTIMAND_TEXT.get(estimand, estimand)} ({n} outcome{'s' if n != 1 else ''}{names})")
    return "; ".join(parts)


def _multiplicity_text(meta: Trial, method: str) -> str:
    fams = {}
    for o in meta.outcomes:
        fams[o.family] = fams.get(o.family, 0) + 1
    per = ", ".join(f"{f} {n}" for f, n in fams.items())
    return f"{ADJUST_NAMES.get(method, method)} within each outcome family and visit ({per} outcomes)"


def _methods_text(meta: Trial, config: dict, eff: pd.DataFrame) -> str:
    """What was estimated and how, in words, from the configuration and the effects actually written."""
    a, c = meta.arms["intervention"], meta.arms["control"]
    n_log = sum(o.is_log for o in meta.outcomes)
    estimands = [ESTIMAND_TEXT.get(e, e) for e in dict.fromkeys(eff["estimand"])]
    censored = eff.loc[eff["primary"].astype(bool) & (eff["estimand"] == "clda_censored"), "outcome"].unique()
    text = (
        f"The intervention effect is the difference between {a} and {c} in change from {meta.visits[0]} to each "
        f"later visit, estimated under {', '.join(estimands)}. The constrained longitudinal analysis (cLDA) "
        "keeps baseline in the response with one baseline mean for both arms."
    )
    if len(censored):
        text += (
            f" For the {len(censored)} outcome{'s' if len(censored) != 1 else ''} with values below the assay's limit "
            "of detection the primary cLDA is a left-censored mixed model fitted by maximum likelihood, with Wald z "
            "tests (no denominator df)."
        )
    if n_log:
        text += (
            f" {n_log} log-transformed outcome{'s are' if n_log != 1 else ' is'} reported as ratios of change "
            f"({a} / {c}); the others as differences in their units."
        )
    if meta.has_healthy:
        text += " Healthy controls enter only the comparison with patients at baseline."
    return text


def _effect_size_summary(path: str, meta: Trial) -> list[str]:
    es = pd.read_csv(path, dtype={"visit": str})
    std = es[es["effect_size"] == "standardised difference"]
    g = es[es["effect_size"] == "Hedges g"].set_index("outcome")
    labels = _labels(meta)
    shown = pd.DataFrame(
        {
            "Outcome": [labels.get(k, k) for k in std["outcome"]],
            "Visit": std["visit"],
            "Standardised difference [95% CI]": [_ci_text(*r) for r in std[["value", "ci_low", "ci_high"]].to_numpy()],
            "Hedges g, patients vs healthy [95% CI]": [
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


def _sensitivity_summary(path: str, meta: Trial, alpha: float) -> list[str]:
    sens = pd.read_csv(path, dtype={"visit": str})
    labels = _labels(meta)
    rows = []
    for key, g in sens.groupby("outcome", sort=False):
        prim, rest = g.iloc[0], g.iloc[1:]
        ok = rest[rest["estimate"].notna()]
        same_sign = int((np.sign(ok["estimate"]) == np.sign(prim["estimate"])).sum())
        lo, hi = _ratio_if_log(meta, key, ok["estimate"].min(), ok["estimate"].max()) if len(ok) else (None, None)
        d = decimals_for(lo, hi) if lo is not None else 0
        rows.append(
            {
                "Outcome": labels.get(key, key),
                "Primary [95% CI]": _ci_text(*_ratio_if_log(meta, key, *prim[["estimate", "ci_low", "ci_high"]])),
                "Sensitivity estimates": f"{number(lo, d)} to {number(hi, d)}" if lo is not None else "",
                "Same direction": f"{same_sign} of {len(rest)}",
                f"p < {alpha:g}": f"{int((g['p'] < alpha).sum())} of {len(g)}",
                "Not estimated": int((g["status"] != "ok").sum()),
            }
        )
    return [
        "<h2>Sensitivity</h2>",
        "<p>Intervention effect at the last visit under each sensitivity analysis "
        "(complete cases, outliers, below-LOD substitution, mixed ANOVA, Hodges-Lehmann), as ratios for "
        "log-transformed outcomes; one forest plot per outcome in figures/sensitivity/.</p>",
        render.html_table(pd.DataFrame(rows), ""),
    ]


def _diagnostics_summary(path: str, meta: Trial) -> list[str]:
    diag = pd.read_csv(path)
    labels = _labels(meta)
    rows = []
    for key, g in diag.groupby("outcome", sort=False):
        top = g.iloc[0]
        rows.append(
            {
                "Outcome": labels.get(key, key),
                "Influential participants": f"{int(g['influential'].isin([True, 'True']).sum())} of {len(g)}",
                "Largest Cook's distance": "" if pd.isna(top["cooks_distance"]) else f"{top['cooks_distance']:.3g}",
                "Its change in the intervention effect (model scale)": ""
                if pd.isna(top["interaction_change"])
                else f"{top['interaction_change']:+.3g}",
                "Status": "ok" if (g["fit_status"] == "ok").all() else "; ".join(sorted(set(g["fit_status"]) - {"ok"})),
            }
        )
    return [
        "<h2>Diagnostics</h2>",
        "<p>Participant influence on the primary mixed model (deletion and refit; threshold 4/m); "
        "residual and random-effect plots per outcome in figures/diagnostics/.</p>",
        render.html_table(pd.DataFrame(rows), ""),
    ]


def _mediation_summary(path: str, meta: Trial) -> list[str]:
    med = pd.read_csv(path)
    head = "<h2>Mediation</h2>"
    if med.empty:
        return [head, "<p>No mediator-outcome pairs configured (config mediation).</p>"]
    labels = _labels(meta)
    ind = med[med["path"] == "a*b (indirect)"]
    shown = pd.DataFrame(
        {
            "Mediator": [labels.get(k, k) for k in ind["mediator"]],
            "Outcome": [labels.get(k, k) for k in ind["outcome"]],
            "Indirect a\u00d7b [bootstrap 95% CI]": [
                _ci_text(*r) for r in ind[["estimate", "ci_low", "ci_high"]].to_numpy()
            ],
            "p (FDR)": ind["p_fdr"].map(p_value),
        }
    )
    bad = med[med["status"] != "ok"][["mediator", "outcome", "status"]].drop_duplicates()
    bad = _label_column(bad, meta, "mediator", "outcome")
    parts = [
        head,
        "<p>Arm \u2192 change in mediator \u2192 change in outcome, adjusted for both baselines; "
        "indirect effects (outcome units per arm, on the mediator's model scale) with bias-corrected "
        "bootstrap intervals.</p>",
        render.html_table(shown, ""),
    ]
    if not bad.empty:
        parts.append(render.html_table(bad, "Pairs not analysed"))
    return parts


ANALYSIS_NAMES = {
    "rm_corr": "repeated-measures r",
    "change_pearson": "change-change Pearson r",
    "change_spearman": "change-change Spearman \u03c1",
}


def _association_summary(path: str, meta: Trial, alpha: float) -> list[str]:
    assoc = pd.read_csv(path)
    if assoc.empty:
        return ["<h2>Biomarker-symptom associations</h2>", "<p>No biomarker-symptom pairs in this codebook.</p>"]
    counts = [
        f"{ANALYSIS_NAMES.get(a, a)}: {int((g['p_fdr'] < alpha).sum())} of {len(g)} pairs"
        for a, g in assoc.groupby("analysis", sort=False)
    ]
    top = assoc.sort_values(["p", "analysis", "biomarker", "clinical"], kind="stable").head(10)
    top = top[["analysis", "biomarker", "clinical", "r", "p", "p_fdr"]].copy()
    top = _label_column(top, meta, "biomarker", "clinical")
    top["analysis"] = top["analysis"].map(lambda a: ANALYSIS_NAMES.get(a, a))
    top["r"] = top["r"].map(lambda v: number(_num(v), 2))
    for c in ("p", "p_fdr"):
        top[c] = top[c].map(p_value)
    top.columns = ["Analysis", "Biomarker", "Clinical outcome", "r", "p", "p (FDR)"]
    return [
        "<h2>Biomarker-symptom associations</h2>",
        f"<p>FDR-adjusted p &lt; {alpha:g}: {html.escape('; '.join(counts))}. Smallest p:</p>",
        render.html_table(top, ""),
    ]


def _permutation_summary(path: str, meta: Trial) -> list[str]:
    perm = pd.read_csv(path, dtype={"visit": str})
    if perm.empty:
        return []
    b = int(perm["rerandomisations"].dropna().max()) if perm["rerandomisations"].notna().any() else 0
    labels = _labels(meta)
    shown = pd.DataFrame(
        {
            "Outcome": [labels.get(k, k) for k in perm["outcome"]],
            "Contrast": perm["contrast"],
            "Effect": [
                number(v, decimals_for(v)) if v is not None else ""
                for v in (_ratio_if_log(meta, k, e)[0] for k, e in zip(perm["outcome"], perm["estimate"], strict=True))
            ],
            "p (model)": perm["p_model"].map(p_value),
            "p (permutation)": perm["p_permutation"].map(p_value),
            "Monte-Carlo SE": perm["mc_se"].map(lambda v: "" if pd.isna(v) else f"{v:.2g}"),
            "Fit": perm["fit_status"].fillna(""),
        }
    )
    estimand = ESTIMAND_TEXT.get(str(perm["estimand"].iloc[0]), str(perm["estimand"].iloc[0]))
    return [
        "<h2>Randomisation inference</h2>",
        f"<p>Arm labels re-randomised {b} times (arm sizes kept) for the {html.escape(estimand)} "
        "intervention effect (ratios for log-transformed outcomes); permutation p with its Monte-Carlo SE "
        "next to the model p.</p>",
        render.html_table(shown, ""),
    ]


def _missing_data_summary(effects_path: str, tipping_path: str, meta: Trial) -> list[str]:
    """Each outcome's effect at the last visit under every strategy, and its MAR tipping point."""
    eff = pd.read_csv(effects_path, dtype={"visit": str})
    tips = pd.read_csv(tipping_path, dtype={"visit": str})
    strategies = [s for s in ("ICE table", "MAR", "JR", "CR", "CIR") if (eff["strategy"] == s).any()]
    rows = []
    for o in meta.outcomes:
        sub = eff[(eff["outcome"] == o.key) & (eff["scale"] == ("ratio" if o.is_log else "model"))]
        visit = meta.visits[-1]
        row = {"Outcome": o.label, "Visit": visit}
        for s in strategies:
            r = sub[(sub["strategy"] == s) & (sub["visit"] == visit)]
            ok = len(r) and r["status"].iloc[0] == "ok"
            row[f"{s} [95% CI]"] = _ci_text(*r[["estimate", "ci_low", "ci_high"]].iloc[0]) if ok else "not estimated"
        t = tips[(tips["outcome"] == o.key) & (tips["visit"] == visit) & (tips["strategy"] == "MAR")]
        if len(t) and pd.notna(t["tipping_delta"].iloc[0]):
            d, d_sd = float(t["tipping_delta"].iloc[0]), float(t["tipping_delta_sd"].iloc[0])
            unit = "log units" if o.is_log else o.unit
            row["MAR tipping point"] = f"{number(d, decimals_for(d))} {unit} ({number(d_sd, 2)} SD)"
        else:
            status = str(t["status"].iloc[0]) if len(t) else ""
            row["MAR tipping point"] = "none: not significant under MAR" if status.startswith("not sig") else status
        rows.append(row)
    n_ice = eff[eff["status"] == "ok"].drop_duplicates("outcome")[["n_ice_intervention", "n_ice_control"]].max()
    arm, ctl = meta.arms["intervention"], meta.arms["control"]
    who = (
        f" (up to {int(n_ice.iloc[0])} {html.escape(arm)} and {int(n_ice.iloc[1])} {html.escape(ctl)} participants "
        "per outcome)"
        if n_ice.notna().all()
        else ""
    )
    # an analysis that was not run or failed says why, once per reason
    reasons = sorted(set(eff.loc[eff["status"] != "ok", "status"].dropna().astype(str)))
    notes = [f"<p>Not estimated for some outcomes: {html.escape(r)}.</p>" for r in reasons]
    return [
        "<h2>Missing data: reference-based imputation</h2>",
        f"<p>The intervention effect at the last visit when participants who stop{who} are taken to "
        f"continue on their arm (MAR), to jump to the {html.escape(ctl)} arm's means (JR), to have followed it "
        "throughout (CR) or to follow its changes (CIR): conditional mean imputation under an MMRM, ANCOVA and "
        "jackknife SEs (as rbmi). The tipping point is the shift of the intervention arm's imputed values at "
        "which the MAR effect stops being significant; ratios for log-transformed outcomes.</p>",
        render.html_table(pd.DataFrame(rows), ""),
        *notes,
    ]


def _fallback_summary(fits: pd.DataFrame) -> list[str]:
    """The models whose covariance structure is not the one configured (model.covariance_fallback)."""
    warn = fits.reindex(columns=["outcome", "estimand", "covariance", "warnings"]).astype(object).fillna("")
    moved = warn[warn["warnings"].str.contains(" used in place of ", regex=False)]
    if moved.empty:
        return []
    items = []
    for r in moved.itertuples():
        wanted = r.warnings.split(" used in place of ", 1)[1].split(";", 1)[0]
        items.append(
            f"<li>{html.escape(r.outcome)}, {html.escape(r.estimand)}: {html.escape(r.covariance)} "
            f"in place of {html.escape(wanted)}, which did not converge</li>"
        )
    return ["<h2>Covariance fallback</h2>", "<ul>", *items, "</ul>"]


def _covariance_compare_summary(path: str, meta: Trial) -> list[str]:
    table = _label_column(pd.read_csv(path), meta, "outcome")
    if table.empty:
        return []
    crit = str(table["criterion"].dropna().iloc[0]) if table["criterion"].notna().any() else "REML"
    shown = table.reindex(
        columns=[
            "outcome",
            "estimand",
            "structure",
            "n_theta",
            "loglik",
            "aic",
            "bic",
            "delta_aic",
            "delta_bic",
            "status",
        ]
    ).copy()
    for c in ("loglik", "aic", "bic", "delta_aic", "delta_bic"):
        shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return [
        "<h2>Covariance structures compared</h2>",
        f"<p>{crit} logLik, AIC and BIC of each structure in model.covariance_compare (smaller AIC and BIC "
        "are better; delta: distance from the best structure of the outcome and model). The primary "
        "analysis uses model.covariance whatever this table shows.</p>",
        render.html_table(shown.astype(object).fillna(""), ""),
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


_STRUCTURE_NAMES = {
    "us": "unstructured",
    "cs": "compound symmetry",
    "csh": "heterogeneous compound symmetry",
    "ar1": "AR(1)",
    "ar1h": "heterogeneous AR(1)",
    "toep": "Toeplitz",
    "toeph": "heterogeneous Toeplitz",
    "ad": "ante-dependence",
    "adh": "heterogeneous ante-dependence",
}


def _model_text(meta: Trial, config: dict, fits: pd.DataFrame) -> str:
    """What was fitted for the lmm and clda estimands, from the fits themselves (structures after fallback)."""
    fitting = "REML" if config["model"].get("reml", True) else "ML"
    mixed = fits.reindex(columns=["estimand", "covariance"])
    used = mixed.loc[mixed["estimand"].isin(["lmm", "clda"]), "covariance"]
    used = sorted({c for c in used.dropna() if isinstance(c, str) and c})
    terms = "arm x visit" + "".join(f" + {c}" for c in meta.covariates)
    parts = []
    if "random-intercept" in used or not used:
        slope = " and time slope" if config["model"]["random_slope"] else ""
        parts.append(f"random participant intercept{slope}")
    mmrm = [c for c in used if c != "random-intercept"]
    if mmrm:
        names = ", ".join(f"{_STRUCTURE_NAMES.get(c, c)} ({c})" for c in mmrm)
        parts.append(f"MMRM with {names} covariance over visits")
    return f"{fitting} linear mixed model, {terms}; " + "; ".join(parts)
