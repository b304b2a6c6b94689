"""Gather per-outcome results into the tidy output tables, and write them reproducibly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.analyses.estimands import OutcomeResult
from pnitrial.analyses.rows import EFFECT_COLUMNS, FIT_COLUMNS
from pnitrial.data.trial import Trial
from pnitrial.inference.multiplicity import adjust
from pnitrial.report.precision import FLOAT_FORMAT, round_frame, round_records

ESTIMAND_LABELS = {"lmm": "LMM arm x visit", "clda": "cLDA", "ancova": "ANCOVA", "clda_censored": "cLDA, censored"}


def _json_safe(x):
    """None for non-finite floats (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def write_result(result: OutcomeResult, path: Path) -> None:
    """One outcome's rows as JSON, rounded by the numeric output policy (pnitrial.precision)."""
    payload = {"fits": result.fits, "effects": result.effects, "emmeans": result.emmeans, "anova": result.anova}
    payload = {k: round_records(rows, f"{Path(path).name}:{k}") for k, rows in payload.items()}
    Path(path).write_text(json.dumps(_json_safe(payload), indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_results(paths: list[str | Path]) -> list[dict]:
    """The per-outcome model files; one that does not parse is named, with what to do about it."""
    out = []
    for p in paths:
        try:
            out.append(json.loads(Path(p).read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{p}: not a valid model result ({exc.__class__.__name__}: {exc}); it was damaged or edited "
                "after the model job wrote it: delete it and run snakemake again to rebuild it"
            ) from None
    return out


def effects_table(results: list[dict], method: str) -> pd.DataFrame:
    """All contrasts; p_fdr adjusts the intervention effects per estimand, family and visit."""
    rows = [row for r in results for row in r["effects"]]
    cols = [c for c in EFFECT_COLUMNS if c not in ("p_fdr", "p_adjust_method")]
    return adjust_effects(pd.DataFrame(rows, columns=cols if not rows else None), method)


def panel_effects_table(effects: pd.DataFrame, method: str) -> pd.DataFrame:
    """A panel's gathered chunks; the FDR family is the whole panel (per estimand and visit)."""
    return adjust_effects(effects, method)


def panel_top_table(effects: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The primary intervention effect of the top_n analytes by p at the last visit (ties by name)."""
    prim = effects[effects["primary"].astype(bool) & (effects["scale"] == "model")]
    last = prim[prim["visit"] == prim["visit"].iloc[-1]] if len(prim) else prim
    top = last.sort_values(["p", "outcome"], kind="stable", na_position="last").head(top_n)
    cols = [
        "outcome",
        "estimand",
        "visit",
        "estimate",
        "ci_low",
        "ci_high",
        "p",
        "p_fdr",
        "p_adjust_method",
        "fit_status",
    ]
    return top[cols].reset_index(drop=True)


def adjust_effects(df: pd.DataFrame, method: str) -> pd.DataFrame:
    """Add p_fdr (and the method's name) to the intervention-effect rows."""
    df = df.copy()
    df["p_fdr"] = np.nan
    df["p_adjust_method"] = ""
    inter = df["contrast"].str.startswith("interaction:") & (df["scale"] == "model")
    # the primary effects form one set even where the primary estimand differs by outcome
    key = np.where(df["primary"].astype(bool), "primary", df["estimand"])
    for _group, idx in df[inter].groupby([key[inter.to_numpy()], "family", "visit"]).groups.items():
        df.loc[idx, "p_fdr"] = adjust(df.loc[idx, "p"].to_numpy(dtype=float), method)
        df.loc[idx, "p_adjust_method"] = method
    # ratio rows carry the same test as their model-scale row
    key = ["outcome", "estimand", "contrast"]
    model = df[inter].set_index(key)[["p_fdr", "p_adjust_method"]].add_suffix("_m")
    ratio = df["contrast"].str.startswith("interaction:") & (df["scale"] == "ratio")
    joined = df[ratio].join(model, on=key)
    df.loc[ratio, "p_fdr"] = joined["p_fdr_m"].to_numpy()
    df.loc[ratio, "p_adjust_method"] = joined["p_adjust_method_m"].to_numpy()
    return df[EFFECT_COLUMNS]


def fits_table(results: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([f for r in results for f in r["fits"]], columns=None if results else FIT_COLUMNS)
    for c in FIT_COLUMNS:
        if c not in df:
            df[c] = np.nan
    return df[FIT_COLUMNS]


def emmeans_table(results: list[dict], meta: Trial) -> pd.DataFrame:
    rows = [row for r in results for row in r["emmeans"]]
    cols = [
        "outcome",
        "arm",
        "visit",
        "emmean",
        "se",
        "df",
        "ci_low",
        "ci_high",
        "response",
        "response_ci_low",
        "response_ci_high",
        "fit_status",
    ]
    df = pd.DataFrame(rows, columns=cols + ["role"])
    return df[cols]


def anova_table(results: list[dict]) -> pd.DataFrame:
    cols = ["outcome", "family", "term", "ndf", "ddf", "F", "p", "statistic_type", "ddf_method", "fit_status"]
    return pd.DataFrame([row for r in results for row in r["anova"]], columns=cols)


def write_csv(df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Write a table of results/, its numbers rounded once by the numeric output policy (pnitrial.precision).

    Returns the table as written, for anything else (readable tables, figures) drawn from it.
    """
    rounded = round_frame(df, Path(path).name)
    rounded.to_csv(path, index=False, lineterminator="\n", float_format=FLOAT_FORMAT)
    return rounded


def _fmt(x: float, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def effects_readable(effects: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """Intervention effects under every estimand for people: ratio for log outcomes."""
    labels = {o.key: (o.label, o.unit, o.transform) for o in meta.outcomes}
    inter = effects[effects["contrast"].str.startswith("interaction:")]
    rows = []
    for o in meta.outcomes:
        label, unit, transform = labels[o.key]
        scale = "ratio" if transform == "log" else "model"
        for r in inter[(inter["outcome"] == o.key) & (inter["scale"] == scale)].itertuples():
            measure = "ratio" if scale == "ratio" else f"difference ({unit})"
            ok = r.fit_status in ("ok", "singular")
            rows.append(
                {
                    "Outcome": label,
                    "Visit": r.visit,
                    "Estimand": ESTIMAND_LABELS[r.estimand] + (" (primary)" if r.primary else ""),
                    "Effect": measure,
                    "Estimate [95% CI]": (
                        f"{_fmt(r.estimate)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if ok else "not estimated"
                    ),
                    "df": _fmt(r.df, 1),
                    "p": _fmt_p(r.p),
                    "p (FDR)": _fmt_p(r.p_fdr),
                    "Fit": r.fit_status,
                }
            )
    return pd.DataFrame(rows)
