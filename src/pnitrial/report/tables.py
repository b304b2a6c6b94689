"""Gather per-outcome results into the tidy output tables, and write them reproducibly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pnitrial.analyses.rows import EFFECT_COLUMNS, FIT_COLUMNS
from pnitrial.data.trial import Trial
from pnitrial.inference.multiplicity import adjust
from pnitrial.report.numbers import effect_text, number, p_value
from pnitrial.report.precision import FLOAT_FORMAT, round_frame, round_records

if TYPE_CHECKING:  # only type hints: table and figure jobs do not import the model stack
    from pnitrial.analyses.estimands import OutcomeResult

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
    """Write one outcome's rows as JSON, rounded by the numeric output policy (pnitrial.report.precision).

    Non-finite numbers are written as null; keys are sorted, so the file repeats byte for byte.

    Parameters
    ----------
    result : OutcomeResult
        The outcome's fits, effects, estimated marginal means and F tests.
    path : Path
        The JSON file to write.

    Examples
    --------
    >>> import tempfile
    >>> from pnitrial.analyses.estimands import OutcomeResult
    >>> result = OutcomeResult(fits=[{"outcome": "crp", "status": "ok", "var_residual": 0.123456789}],
    ...                        effects=[{"outcome": "crp", "estimate": 0.123456789, "se": 0.05, "p": float("nan")}])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_result(result, Path(tmp) / "crp.json")
    ...     [saved] = read_results([Path(tmp) / "crp.json"])
    >>> saved["effects"], saved["fits"][0]["var_residual"]
    ([{'estimate': 0.123457, 'outcome': 'crp', 'p': None, 'se': 0.05}], 0.123457)
    """
    payload = {"fits": result.fits, "effects": result.effects, "emmeans": result.emmeans, "anova": result.anova}
    payload = {k: round_records(rows, f"{Path(path).name}:{k}") for k, rows in payload.items()}
    Path(path).write_text(json.dumps(_json_safe(payload), indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_results(paths: list[str | Path]) -> list[dict]:
    """The per-outcome model files; one that does not parse is named, with what to do about it.

    Parameters
    ----------
    paths : list of str or Path
        JSON files written by `write_result`.

    Returns
    -------
    list of dict
        One ``{'fits', 'effects', 'emmeans', 'anova'}`` mapping per file, in order.

    Raises
    ------
    ValueError
        For a file that is not valid JSON (damaged or edited after the model job wrote it).

    Examples
    --------
    >>> import contextlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("crp.json").write_text('{"fits": [], "effects": [], "emmeans": [], "anova": []}')
    ...     _ = Path("il6.json").write_text('{"fits": [')
    ...     print(len(read_results(["crp.json"])))
    ...     try:
    ...         read_results(["crp.json", "il6.json"])
    ...     except ValueError as exc:
    ...         print(str(exc).split(" (")[0])
    1
    il6.json: not a valid model result
    """
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
    """All contrasts of all outcomes; p_fdr adjusts the intervention effects per estimand, family and visit.

    Parameters
    ----------
    results : list of dict
        The per-outcome results (`read_results`).
    method : {'bh', 'by', 'holm', 'none'}
        The multiplicity adjustment (config multiplicity.method).

    Returns
    -------
    DataFrame
        The effects table, columns ``EFFECT_COLUMNS`` (see `adjust_effects`).

    Examples
    --------
    >>> from pnitrial.analyses.rows import EFFECT_COLUMNS
    >>> def row(outcome, p, scale="model", estimate=0.2):
    ...     return {**dict.fromkeys(EFFECT_COLUMNS), "outcome": outcome, "family": "biomarker", "estimand": "clda",
    ...             "primary": True, "contrast": "interaction:post", "visit": "post", "scale": scale,
    ...             "estimate": estimate, "p": p, "fit_status": "ok"}
    >>> results = [{"effects": [row("crp", 0.01)]}, {"effects": [row("il6", 0.04)]}]
    >>> table = effects_table(results, "holm")
    >>> table["p_fdr"].round(6).tolist(), table["p_adjust_method"].tolist()
    ([0.02, 0.04], ['holm', 'holm'])
    """
    rows = [row for r in results for row in r["effects"]]
    cols = [c for c in EFFECT_COLUMNS if c not in ("p_fdr", "p_adjust_method")]
    return adjust_effects(pd.DataFrame(rows, columns=cols if not rows else None), method)


def panel_effects_table(effects: pd.DataFrame, method: str) -> pd.DataFrame:
    """A panel's gathered chunks, adjusted; the FDR family is the whole panel (per estimand and visit).

    Parameters
    ----------
    effects : DataFrame
        The effect rows of every chunk of the panel.
    method : {'bh', 'by', 'holm', 'none'}
        The multiplicity adjustment.

    Returns
    -------
    DataFrame
        As `adjust_effects`.

    Examples
    --------
    >>> from pnitrial.analyses.rows import EFFECT_COLUMNS
    >>> def row(outcome, p, scale="model", estimate=0.2):
    ...     return {**dict.fromkeys(EFFECT_COLUMNS), "outcome": outcome, "family": "biomarker", "estimand": "clda",
    ...             "primary": True, "contrast": "interaction:post", "visit": "post", "scale": scale,
    ...             "estimate": estimate, "p": p, "fit_status": "ok"}
    >>> effects = pd.DataFrame([row("P0001", 0.001), row("P0002", 0.03), row("P0003", 0.5)])
    >>> panel_effects_table(effects, "bh")["p_fdr"].round(6).tolist()
    [0.003, 0.045, 0.5]
    """
    return adjust_effects(effects, method)


def panel_top_table(effects: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The primary intervention effect of the top_n analytes by p at the last visit (ties by name).

    Parameters
    ----------
    effects : DataFrame
        The panel's adjusted effects (`panel_effects_table`).
    top_n : int
        How many analytes to keep.

    Returns
    -------
    DataFrame
        Columns ``outcome``, ``estimand``, ``visit``, ``estimate``, ``ci_low``, ``ci_high``, ``p``,
        ``p_fdr``, ``p_adjust_method`` and ``fit_status``, smallest p first.

    Examples
    --------
    >>> from pnitrial.analyses.rows import EFFECT_COLUMNS
    >>> def row(outcome, p, scale="model", estimate=0.2):
    ...     return {**dict.fromkeys(EFFECT_COLUMNS), "outcome": outcome, "family": "biomarker", "estimand": "clda",
    ...             "primary": True, "contrast": "interaction:post", "visit": "post", "scale": scale,
    ...             "estimate": estimate, "p": p, "fit_status": "ok"}
    >>> effects = panel_effects_table(pd.DataFrame([row("P0001", 0.2), row("P0002", 0.003), row("P0003", 0.04)]), "bh")
    >>> top = panel_top_table(effects, 2)
    >>> top["outcome"].tolist(), top["p_fdr"].round(6).tolist()
    (['P0002', 'P0003'], [0.009, 0.06])
    """
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
    """Add p_fdr (and the method's name) to the intervention-effect rows.

    The model-scale intervention effects are adjusted within each family and visit, and within
    the estimand, except that the primary effects form one set (the primary estimand may differ by
    outcome). A ratio row carries the adjusted p of its model-scale row; other contrasts get NaN.

    Parameters
    ----------
    df : DataFrame
        Effect rows with at least the columns of ``EFFECT_COLUMNS`` but p_fdr and p_adjust_method.
    method : {'bh', 'by', 'holm', 'none'}
        The adjustment (see `pnitrial.inference.multiplicity.adjust`): Benjamini & Hochberg 1995
        (JRSS B 57:289), Benjamini & Yekutieli 2001 (Ann Stat 29:1165) or Holm 1979 (Scand J Stat 6:65).

    Returns
    -------
    DataFrame
        A copy, columns ``EFFECT_COLUMNS``.

    Examples
    --------
    >>> from pnitrial.analyses.rows import EFFECT_COLUMNS
    >>> def row(outcome, p, scale="model", estimate=0.2):
    ...     return {**dict.fromkeys(EFFECT_COLUMNS), "outcome": outcome, "family": "biomarker", "estimand": "clda",
    ...             "primary": True, "contrast": "interaction:post", "visit": "post", "scale": scale,
    ...             "estimate": estimate, "p": p, "fit_status": "ok"}
    >>> effects = pd.DataFrame([row("crp", 0.01), row("crp", 0.01, "ratio", 1.22), row("il6", 0.04)])
    >>> out = adjust_effects(effects, "bh")
    >>> out["scale"].tolist(), out["p_fdr"].round(6).tolist(), out["p_adjust_method"].tolist()
    (['model', 'ratio', 'model'], [0.02, 0.02, 0.04], ['bh', 'bh', 'bh'])
    """
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
    """One row per fitted model of every outcome, columns ``FIT_COLUMNS`` (missing ones as NaN).

    Parameters
    ----------
    results : list of dict
        The per-outcome results (`read_results`).

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> results = [{"fits": [{"outcome": "crp", "estimand": "clda", "status": "ok"}]}]
    >>> table = fits_table(results)
    >>> list(table.columns) == FIT_COLUMNS, table.loc[0, "status"], fits_table([]).shape[0]
    (True, 'ok', 0)
    """
    df = pd.DataFrame([f for r in results for f in r["fits"]], columns=None if results else FIT_COLUMNS)
    for c in FIT_COLUMNS:
        if c not in df:
            df[c] = np.nan
    return df[FIT_COLUMNS]


def emmeans_table(results: list[dict], meta: Trial) -> pd.DataFrame:
    """Estimated marginal means of every outcome by arm and visit, on the model and response scales.

    Parameters
    ----------
    results : list of dict
        The per-outcome results (`read_results`).
    meta : Trial
        The trial (not used; kept for the callers).

    Returns
    -------
    DataFrame
        Columns ``outcome``, ``estimand`` (the model: ``lmm``, ``clda``, ``clda_censored``), ``primary``,
        ``arm``, ``visit``, ``emmean``, ``se``, ``df``, ``ci_low``, ``ci_high``, ``response``,
        ``response_ci_low``, ``response_ci_high`` and ``fit_status``. The cLDA's means share the
        baseline between arms, as its model does.

    Examples
    --------
    >>> results = [{"emmeans": [{"outcome": "crp", "estimand": "lmm", "arm": "A", "visit": "pre", "emmean": 0.18}]}]
    >>> table = emmeans_table(results, meta=None)
    >>> table.shape, float(table.loc[0, "emmean"])
    ((1, 14), 0.18)
    """
    rows = [row for r in results for row in r["emmeans"]]
    cols = [
        "outcome",
        "estimand",
        "primary",
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
    """The arm x visit F test of every outcome.

    Parameters
    ----------
    results : list of dict
        The per-outcome results (`read_results`).

    Returns
    -------
    DataFrame
        Columns ``outcome``, ``family``, ``term``, ``ndf``, ``ddf``, ``F``, ``p``, ``statistic_type``,
        ``ddf_method`` and ``fit_status``.

    Examples
    --------
    >>> results = [{"anova": [{"outcome": "crp", "term": "arm:visit", "ndf": 1, "ddf": 40.2, "F": 6.1, "p": 0.018}]}]
    >>> anova_table(results)[["outcome", "term", "F", "p"]].to_dict("records")
    [{'outcome': 'crp', 'term': 'arm:visit', 'F': 6.1, 'p': 0.018}]
    """
    cols = ["outcome", "family", "term", "ndf", "ddf", "F", "p", "statistic_type", "ddf_method", "fit_status"]
    return pd.DataFrame([row for r in results for row in r["anova"]], columns=cols)


def write_csv(df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Write a table of results/, its numbers rounded once by the numeric output policy (pnitrial.report.precision).

    Returns the table as written, for anything else (readable tables, figures) drawn from it.

    Parameters
    ----------
    df : DataFrame
        The table.
    path : str or Path
        The CSV file to write (Unix line endings, shortest decimal of each rounded number).

    Returns
    -------
    DataFrame
        The rounded table.

    Examples
    --------
    >>> import tempfile
    >>> df = pd.DataFrame({"outcome": ["crp"], "estimate": [0.123456789], "se": [0.05]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write_csv(df, Path(tmp) / "effects.csv")
    ...     text = (Path(tmp) / "effects.csv").read_text()
    >>> written["estimate"].tolist(), text.splitlines()
    ([0.123457], ['outcome,estimate,se', 'crp,0.123457,0.05'])
    """
    rounded = round_frame(df, Path(path).name)
    rounded.to_csv(path, index=False, lineterminator="\n", float_format=FLOAT_FORMAT)
    return rounded


def effects_readable(effects: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """Intervention effects under every estimand for people: ratio for log outcomes.

    Estimates and CIs to three significant digits, df with one decimal, p in APA style (``.003``,
    ``< .001``); a fit whose status is not ok or singular reads ``not estimated``.

    Parameters
    ----------
    effects : DataFrame
        The effects table (`effects_table`).
    meta : Trial
        The trial, for labels, units and transforms.

    Returns
    -------
    DataFrame
        Columns ``Outcome``, ``Visit``, ``Estimand``, ``Effect``, ``Estimate [95% CI]``, ``df``,
        ``p``, ``p (FDR)`` and ``Fit``.

    Examples
    --------
    >>> from pnitrial.analyses.rows import EFFECT_COLUMNS
    >>> def row(outcome, p, scale="model", estimate=0.2):
    ...     return {**dict.fromkeys(EFFECT_COLUMNS), "outcome": outcome, "family": "biomarker", "estimand": "clda",
    ...             "primary": True, "contrast": "interaction:post", "visit": "post", "scale": scale,
    ...             "estimate": estimate, "p": p, "fit_status": "ok"}
    >>> from pnitrial.data.codebook import Outcome
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log")
    >>> meta = Trial("demo", {"intervention": "A", "control": "B", "healthy": None}, ("pre", "post"), outcomes=(crp,))
    >>> effects = pd.DataFrame([row("crp", 0.0004, "ratio", 1.22)])
    >>> effects = effects.assign(ci_low=1.05, ci_high=1.41, df=40.2, p_fdr=0.0008)
    >>> effects_readable(effects, meta).iloc[0].tolist()
    ['CRP', 'post', 'cLDA (primary)', 'ratio', '1.22 [1.05, 1.41]', '40.2', '< .001', '< .001', 'ok']
    """
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
                    "Estimate [95% CI]": effect_text(r.estimate, r.ci_low, r.ci_high) if ok else "not estimated",
                    "df": number(r.df, 1),
                    "p": p_value(r.p),
                    "p (FDR)": p_value(r.p_fdr),
                    "Fit": r.fit_status,
                }
            )
    return pd.DataFrame(rows)
