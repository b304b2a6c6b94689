"""Every estimand for a panel of analytes, fitted in batches.

The same estimands, contrasts and inference as analyses.estimands (cLDA, the arm x visit LMM and
ANCOVA), computed for all analytes at once with models.batch and the batched forms of the
inference modules: one design built from validated columns, each analyte with its own missing
values. A random slope is not in the batched engine; with `random_slope` each analyte goes through
the single-fit path. Rows come from the one builder of analyses.rows, as a trial outcome's do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.analyses.mixed import MIN_PER_ARM, fit_mmrm_chain, re_term
from pnitrial.analyses.rows import EFFECT_COLUMNS, effect_columns, fit_header, mixed_fit_values, mmrm_fit_values
from pnitrial.data.codebook import TRIAL_ROLES, Outcome
from pnitrial.data.trial import Trial
from pnitrial.inference.contrasts import BatchEstimates, batch_estimates, inference_basis
from pnitrial.inference.wald import wald
from pnitrial.models.batch import BatchFit, fit_batch
from pnitrial.models.design import clda_columns, covariate_columns, trial_columns, trial_contrasts
from pnitrial.models.mmrm_batch import Panel, fit_mmrm_batch
from pnitrial.models.ols import fit_ols
from pnitrial.progress import track


def _trial_rows(rows: pd.DataFrame, meta: Trial) -> np.ndarray:
    keep = rows["role"].isin(TRIAL_ROLES).to_numpy().copy()
    for c in meta.covariates:
        keep &= rows[c].notna().to_numpy()
    return np.flatnonzero(keep)


class _Table:
    """Collects a panel's effect and fit rows (analyses.rows) as columns of arrays, one entry per analyte."""

    def __init__(self, keys: list[str], family: str, transform: str, opts: AnalysisOptions):
        self.keys, self.family, self.transform, self.opts = np.array(keys, dtype=object), family, transform, opts
        self.effects: list[pd.DataFrame] = []
        self.fits: list[pd.DataFrame] = []

    def add_effect(
        self, estimand: str, contrast: str, visit: str, e: BatchEstimates, method: str, status, covariance=None
    ) -> None:
        primary = estimand == self.opts.primary
        log_scale = self.transform == "log"
        if covariance is None:
            covariance = "" if estimand == "ancova" else "random-intercept"
        for cols in effect_columns(
            self.keys, self.family, log_scale, estimand, contrast, visit, primary, method, status, e, covariance
        ):
            self.effects.append(pd.DataFrame(cols))

    def add_fit(self, estimand: str, model: str, ddf: str, visit: str, values: dict) -> None:
        head = fit_header(self.keys, self.family, self.transform, estimand, model, ddf, visit)
        covariance = "" if estimand == "ancova" else "random-intercept"
        self.fits.append(pd.DataFrame({**head, "covariance": covariance, **values}))


def _n_by_role(rows: pd.DataFrame, W: np.ndarray) -> dict[str, np.ndarray]:
    """Participants with at least one value, per role and analyte."""
    out = {}
    for role in TRIAL_ROLES:
        sel = (rows["role"] == role).to_numpy()
        pid = rows["pid"].to_numpy()[sel]
        out[role] = pd.DataFrame(W[sel]).groupby(pid).any().sum(axis=0).to_numpy()
    return out


def _fit_warnings(fit: BatchFit) -> list[str]:
    out = []
    for ok, conv, sing, g in zip(fit.ok, fit.converged, fit.singular, fit.gradient, strict=True):
        w = []
        if ok and sing:
            w.append("boundary (singular) fit: a random-effect variance is estimated at zero")
        if ok and not conv:
            w.append(f"model failed to converge: scaled gradient {g:.2g}")
        out.append("; ".join(w))
    return out


def _mixed(
    estimand: str,
    sub: pd.DataFrame,
    Y: np.ndarray,
    cols: list[np.ndarray],
    covs: str,
    model: str,
    table: _Table,
    opts: AnalysisOptions,
    n_role: dict,
):
    fit = fit_batch(np.column_stack(cols), sub["pid"].to_numpy(), Y)
    values = mixed_fit_values(fit, n_role, _fit_warnings(fit), fit.error)
    table.add_fit(estimand, f"{model}{covs} + (1 | participant)", opts.ddf, "", values)
    return fit, values["status"], inference_basis(fit, opts.ddf)


def analyse_panel(
    rows: pd.DataFrame, values: np.ndarray, meta: Trial, panel: dict, opts: AnalysisOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effects and fits of every analyte (columns of `values`); failures are rows, never raised.

    Analytes whose batched fit does not converge are refitted by the single-fit engine (with its
    statsmodels fallback), as are all analytes when `opts.random_slope` is set; under an MMRM
    covariance (`opts.covariance`, e.g. `auto` with three or more visits) every analyte is an MMRM
    fitted one at a time, with the same fallback and inference as a trial outcome.

    Parameters
    ----------
    rows : DataFrame
        One row per participant x visit: pid, role, visit, visit_index and the covariates.
    values : ndarray, shape (len(rows), K)
        The analytes' raw values, NaN where missing.
    meta : Trial
        The trial.
    panel : dict
        analytes (K keys), family, transform ("none" or "log") and unit.
    opts : AnalysisOptions
        How the estimands are fitted.

    Returns
    -------
    effects : DataFrame
        Rows as analyses.estimands writes them, analyte by analyte in panel order.
    fits : DataFrame
        One row per analyte and model.

    Examples
    --------
    >>> from pnitrial.analyses.estimands import AnalysisOptions
    >>> from pnitrial.data.trial import Trial
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> rows = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...                      "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6)})
    >>> rng = np.random.default_rng(7)
    >>> values = 5 + rng.normal(size=(6, 2))[pid - 1] + rng.normal(scale=0.5, size=(12, 2))
    >>> panel = {"analytes": ["IL6", "TNF"], "family": "olink", "transform": "none", "unit": "NPX"}
    >>> effects, fits = analyse_panel(rows, values, meta, panel, AnalysisOptions())
    >>> primary = effects[effects["primary"] & (effects["contrast"] == "interaction:post")]
    >>> primary["outcome"].tolist(), primary["estimand"].tolist(), primary["estimate"].round(4).tolist()
    (['IL6', 'TNF'], ['clda', 'clda'], [-0.0288, 0.2681])
    >>> fits["estimand"].tolist()[:3], fits["status"].unique().tolist()
    (['lmm', 'clda', 'ancova'], ['ok'])
    """
    keys = list(panel["analytes"])
    if opts.random_slope:
        return _one_at_a_time(rows, values, meta, panel, opts)
    if opts.structure(len(meta.visits)) != "random-intercept":
        return _mmrm(rows, values, meta, panel, opts)
    table = _Table(keys, panel["family"], panel["transform"], opts)
    idx = _trial_rows(rows, meta)
    sub = rows.iloc[idx].reset_index(drop=True)
    Y = np.log(values[idx]) if panel["transform"] == "log" else values[idx]
    visits = [v for v in meta.visits if v in set(sub["visit"])]
    covs = "".join(f" + {c}" for c in meta.covariates)
    n_role = _n_by_role(sub, np.isfinite(Y))

    cols, names, _inter, grid = trial_columns(sub, visits, meta)
    fit, status, basis = _mixed("lmm", sub, Y, cols, covs, "arm * visit", table, opts, n_role)
    for contrast, visit, L in trial_contrasts(grid):
        table.add_effect("lmm", contrast, visit, batch_estimates(fit, L, opts.ddf, opts.alpha, basis), opts.ddf, status)

    cols, names, effects = clda_columns(sub, visits, meta)
    fit, status, basis = _mixed("clda", sub, Y, cols, covs, "visit + arm:visit[after baseline]", table, opts, n_role)
    for v, col in effects.items():
        L = np.eye(len(names))[col]
        e = batch_estimates(fit, L, opts.ddf, opts.alpha, basis)
        table.add_effect("clda", f"interaction:{v}", v, e, opts.ddf, status)

    for v in meta.visits[1:]:
        _ancova(sub, Y, meta, v, covs, table, opts)
    eff, fits = _ordered(table, keys)
    return _refit_not_converged(eff, fits, rows, values, meta, panel, opts)


def _refit_not_converged(eff, fits, rows, values, meta, panel, opts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Analytes whose batched fit did not converge go through the single-fit engine and its
    statsmodels fallback; their rows are replaced, in place, by that path's."""
    redo = sorted(set(fits.loc[fits["status"] == "not converged", "outcome"]), key=list(panel["analytes"]).index)
    return _splice(eff, fits, redo, rows, values, meta, panel, opts)


def _splice(eff, fits, redo, rows, values, meta, panel, opts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of the analytes `redo` from the trial outcomes' path, in panel order among the others."""
    if not redo:
        return eff, fits
    cols = [list(panel["analytes"]).index(k) for k in redo]
    e2, f2 = _one_at_a_time(rows, values[:, cols], meta, dict(panel, analytes=redo), opts)
    keys = list(panel["analytes"])
    if len(eff):
        eff = pd.concat([eff[~eff["outcome"].isin(redo)], e2[eff.columns.intersection(e2.columns)]], ignore_index=True)
        fits = pd.concat([fits[~fits["outcome"].isin(redo)], f2], ignore_index=True)
    else:
        eff, fits = e2, f2
    table = _Table(keys, panel["family"], panel["transform"], opts)
    table.effects, table.fits = [eff], [fits]
    return _ordered(table, keys)


def _mmrm(rows, values, meta, panel, opts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every analyte an MMRM (`opts.covariance`): one design, each estimand's MMRMs fitted in one batch.

    models.mmrm_batch fits all analytes at once; an analyte it does not converge takes the trial
    outcomes' fallback chain (analyses.mixed), and the inference is a trial outcome's. The rows are
    built by column with the batched ANCOVAs. An analyte without a value at some visit, or whose
    model ends in any status but ok, goes through the trial outcomes' path instead, so that its rows
    are exactly a trial outcome's.
    """
    keys = list(panel["analytes"])
    idx = _trial_rows(rows, meta)
    sub = rows.iloc[idx]
    order = np.lexsort((sub["visit_index"].to_numpy(), sub["pid"].to_numpy()))  # MMRM rows by participant
    sub = sub.iloc[order].reset_index(drop=True)
    Y = values[idx][order]
    Y = np.log(Y) if panel["transform"] == "log" else Y
    visits = [v for v in meta.visits if v in set(sub["visit"])]
    covs = "".join(f" + {c}" for c in meta.covariates)
    W = np.isfinite(Y)
    n_role = _n_by_role(sub, W)
    vidx = sub["visit"].map({v: i for i, v in enumerate(visits)}).to_numpy()
    pid = sub["pid"].to_numpy()
    chosen = opts.structure(len(visits))
    lmm_cols, lmm_names, _inter, grid = trial_columns(sub, visits, meta)
    clda_cols, clda_names, clda_effects = clda_columns(sub, visits, meta)
    models = {
        "lmm": (np.column_stack(lmm_cols), lmm_names, trial_contrasts(grid), f"arm * visit{covs}"),
        "clda": (
            np.column_stack(clda_cols),
            clda_names,
            [(f"interaction:{v}", v, np.eye(len(clda_names))[c]) for v, c in clda_effects.items()],
            f"visit + arm:visit[after baseline]{covs}",
        ),
    }
    n_by = [{r: int(n_role[r][k]) for r in TRIAL_ROLES} for k in range(len(keys))]
    usable = [
        k for k in range(len(keys)) if len(set(vidx[W[:, k]])) == len(visits) and min(n_by[k].values()) >= MIN_PER_ARM
    ]
    done: dict[int, dict] = {k: {} for k in usable}
    group = pd.factorize(pid)[0]
    for estimand, (X, names, contrasts, _) in models.items():
        batch = Panel(X, group, vidx, len(visits), tuple(names), Y[:, usable])
        batched = dict(zip(usable, fit_mmrm_batch(batch, chosen, opts.reml), strict=True))
        for j, k in enumerate(track(usable, len(usable), f"{estimand} MMRMs")):
            if k not in done:
                continue
            try:
                fit, inf, notes = fit_mmrm_chain(batch.data(j), chosen, opts, batched[k])
            except (ValueError, np.linalg.LinAlgError):
                del done[k]  # the trial outcomes' path reports it, with its reason
                continue
            fit_values = mmrm_fit_values(fit, n_by[k], "; ".join(fit.warnings + inf.warnings + notes))
            if fit_values["status"] != "ok":
                del done[k]
                continue
            done[k][estimand] = (fit_values, [inf.moments(L) for _, _, L in contrasts])
    ok = sorted(done)
    table = _Table([keys[k] for k in ok], panel["family"], panel["transform"], opts)
    if ok:
        for estimand, (_, _, contrasts, model) in models.items():
            fit_values = [done[k][estimand][0] for k in ok]
            structure = np.array([f["covariance"] for f in fit_values], dtype=object)
            status = np.full(len(ok), "ok", dtype=object)
            for j, (contrast, visit, _) in enumerate(contrasts):
                est, se, df = (np.array(x) for x in zip(*(done[k][estimand][1][j] for k in ok), strict=True))
                e = _tested(est, se, df, opts.alpha)
                table.add_effect(estimand, contrast, visit, e, opts.ddf, status, structure)
            models_k = np.array([model + re_term(opts, c) for c in structure], dtype=object)
            typed = pd.DataFrame(fit_values)  # the dtypes a table of trial-outcome fits gets
            columns = {c: typed[c].to_numpy() for c in typed.columns}
            table.add_fit(estimand, models_k, opts.ddf, "", columns)
        for v in meta.visits[1:]:
            _ancova(sub, Y[:, ok], meta, v, covs, table, opts)
        eff, fits = _ordered(table, [keys[k] for k in ok])
    else:
        eff, fits = pd.DataFrame(columns=EFFECT_COLUMNS), pd.DataFrame()
    redo = [keys[k] for k in range(len(keys)) if k not in done]
    return _splice(eff, fits, redo, rows, values, meta, panel, opts)


def _tested(est: np.ndarray, se: np.ndarray, df: np.ndarray, alpha: float) -> BatchEstimates:
    """Wald tests of many estimates at once: t where the df is finite, z where it is infinite (as one fit)."""
    out = {f: np.full(len(est), np.nan) for f in ("statistic", "p", "ci_low", "ci_high")}
    kind = np.where(np.isinf(df), "z", "t").astype(object)
    for sel in (np.isinf(df), ~np.isinf(df)):
        if sel.any():
            w = wald(est[sel], se[sel], df[sel], alpha)
            for f in out:
                out[f][sel] = getattr(w, f)
    kind_all = kind[0] if len(set(kind)) == 1 else kind
    return BatchEstimates(est, se, df, out["statistic"], kind_all, out["p"], out["ci_low"], out["ci_high"])


def _ancova(sub: pd.DataFrame, Y: np.ndarray, meta: Trial, visit: str, covs: str, table: _Table, opts) -> None:
    """y at `visit` ~ arm + baseline + covariates by OLS on complete pairs, every analyte at once."""
    base_rows = sub.index[sub["visit"] == meta.visits[0]]
    post_rows = sub.index[sub["visit"] == visit]
    pairs = sub.loc[base_rows, ["pid"]].reset_index().merge(sub.loc[post_rows, ["pid"]].reset_index(), on="pid")
    b, a = pairs["index_x"].to_numpy(), pairs["index_y"].to_numpy()
    basesub = sub.loc[b]
    ccols, _ = covariate_columns(basesub, meta.covariates)
    K, N = Y.shape[1], len(b)
    fixed = np.column_stack([np.ones(N), (basesub["role"] == "intervention").to_numpy(dtype=float)])
    X = np.concatenate(
        [
            np.broadcast_to(fixed, (K, N, 2)),
            Y[b].T[:, :, None],
            np.broadcast_to(np.column_stack(ccols or [np.zeros((N, 0))]), (K, N, len(ccols))),
        ],
        axis=2,
    )
    yb, ya = Y[b].T, Y[a].T
    W = np.isfinite(yb) & np.isfinite(ya)
    n = W.sum(axis=1)
    est, se, df, s2 = (np.full(K, np.nan) for _ in range(4))
    error = np.full(K, "", dtype=object)
    for k in range(K):  # the one OLS, analyte by analyte on its complete pairs (about 50 us each)
        try:
            fit = fit_ols(X[k][W[k]], ya[k][W[k]])
        except (ValueError, np.linalg.LinAlgError) as exc:
            error[k] = str(exc)
            continue
        est[k], se[k], df[k], s2[k] = fit.beta[1], np.sqrt(fit.vcov[1, 1]), fit.df_resid, fit.sigma2
    bad = error != ""
    w = wald(est, se, df, opts.alpha)
    e = BatchEstimates(est, se, df, w.statistic, "t", w.p, w.ci_low, w.ci_high)
    status = np.where(bad, "failed", "ok")
    table.add_effect("ancova", f"interaction:{visit}", visit, e, "ols", status)
    n_role = {r: ((basesub["role"] == r).to_numpy()[None, :] & W).sum(axis=1) for r in TRIAL_ROLES}
    table.add_fit(
        "ancova",
        f"{visit} ~ arm + baseline{covs} (OLS, complete pairs)",
        "ols",
        visit,
        {
            "status": status,
            "n_participants": n,
            "n_intervention": n_role["intervention"],
            "n_control": n_role["control"],
            "n_obs": n,
            "var_residual": s2,
            "converged": ~bad,
            "singular": np.where(bad, None, False),
            "warnings": "",
            "error": error,
        },
    )


def _ordered(table: _Table, keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Analyte by analyte, in panel order, estimands as analyses.estimands writes them."""
    rank = {k: i for i, k in enumerate(keys)}
    eff = pd.concat(table.effects, ignore_index=True)
    eff = eff[[c for c in EFFECT_COLUMNS if c in eff]]
    eff = eff.iloc[np.argsort(eff["outcome"].map(rank).to_numpy(), kind="stable")].reset_index(drop=True)
    fits = pd.concat(table.fits, ignore_index=True)
    fits = fits.iloc[np.argsort(fits["outcome"].map(rank).to_numpy(), kind="stable")].reset_index(drop=True)
    return eff, fits


def long_from_wide(rows: pd.DataFrame, values: np.ndarray, keys: list[str]) -> pd.DataFrame:
    """The long frame analyses.estimands reads, for the analytes `keys` (columns of `values`).

    Parameters
    ----------
    rows : DataFrame
        One row per participant x visit.
    values : ndarray, shape (len(rows), len(keys))
        Values, NaN where missing.
    keys : list of str
        Analyte keys, one per column of `values`.

    Returns
    -------
    DataFrame
        `rows` repeated per analyte with outcome, value, censored (0) and lod (NaN); missing values dropped.

    Examples
    --------
    >>> from pnitrial.data.trial import Trial
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> rows = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...                      "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6)})
    >>> rng = np.random.default_rng(7)
    >>> values = 5 + rng.normal(size=(6, 2))[pid - 1] + rng.normal(scale=0.5, size=(12, 2))
    >>> panel = {"analytes": ["IL6", "TNF"], "family": "olink", "transform": "none", "unit": "NPX"}
    >>> values[0, 1] = np.nan
    >>> frame = long_from_wide(rows, values, panel["analytes"])
    >>> len(frame), frame["outcome"].value_counts().sort_index().tolist(), frame.columns.tolist()[-4:]
    (23, [12, 11], ['outcome', 'value', 'censored', 'lod'])
    """
    parts = []
    for j, k in enumerate(keys):
        ok = np.isfinite(values[:, j])
        parts.append(rows[ok].assign(outcome=k, value=values[ok, j], censored=0, lod=np.nan))
    return pd.concat(parts, ignore_index=True)


def panel_meta(meta: Trial, panel: dict) -> Trial:
    """The trial with the analytes as its outcomes, for the single-fit path.

    Parameters
    ----------
    meta : Trial
        The trial.
    panel : dict
        analytes, unit, family and transform.

    Returns
    -------
    Trial
        `meta` with one Outcome per analyte (key, column and label the analyte's name).

    Examples
    --------
    >>> from pnitrial.data.trial import Trial
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"))
    >>> panel = {"analytes": ["IL6", "TNF"], "family": "olink", "transform": "none", "unit": "NPX"}
    >>> [(o.key, o.family, o.unit) for o in panel_meta(meta, panel).outcomes]
    [('IL6', 'olink', 'NPX'), ('TNF', 'olink', 'NPX')]
    """
    outs = [Outcome(k, k, k, panel["unit"], panel["family"], panel["transform"]) for k in panel["analytes"]]
    return meta.with_outcomes(tuple(outs))


def _one_at_a_time(rows, values, meta, panel, opts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Structures the batched engine does not cover (random slopes, MMRM): the single-fit path of trial outcomes."""
    keys = list(panel["analytes"])
    frame = long_from_wide(rows, values, keys)
    pmeta = panel_meta(meta, panel)
    eff, fits = [], []
    for k in keys:
        res = analyse_outcome(frame, pmeta, k, opts)
        eff += res.effects
        fits += [{c: v for c, v in f.items() if c != "coefficients"} for f in res.fits]
    return pd.DataFrame(eff), pd.DataFrame(fits)


def wide_from_long(frame: pd.DataFrame, meta: Trial, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows (participant x visit) and a values matrix for outcomes `keys` of a long frame.

    The inverse of `long_from_wide`.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial (its covariates are kept in the rows).
    keys : list of str
        Outcome keys, one column each.

    Returns
    -------
    rows : DataFrame
        pid, role, visit, visit_index and covariates, sorted by pid and visit.
    values : ndarray, shape (len(rows), len(keys))
        NaN where an outcome has no value.

    Examples
    --------
    >>> from pnitrial.data.trial import Trial
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> rows = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...                      "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6)})
    >>> rng = np.random.default_rng(7)
    >>> values = 5 + rng.normal(size=(6, 2))[pid - 1] + rng.normal(scale=0.5, size=(12, 2))
    >>> panel = {"analytes": ["IL6", "TNF"], "family": "olink", "transform": "none", "unit": "NPX"}
    >>> frame = long_from_wide(rows, values, panel["analytes"])
    >>> rows2, values2 = wide_from_long(frame, meta, panel["analytes"])
    >>> rows2.shape, bool(np.array_equal(values2, values))
    ((12, 4), True)
    """
    ident = ["pid", "role", "visit", "visit_index", *meta.covariates]
    rows = frame[ident].drop_duplicates(["pid", "visit_index"]).sort_values(["pid", "visit_index"], kind="stable")
    rows = rows.reset_index(drop=True)
    wide = frame[frame["outcome"].isin(keys)].pivot(index=["pid", "visit_index"], columns="outcome", values="value")
    wide = wide.reindex(pd.MultiIndex.from_frame(rows[["pid", "visit_index"]]))[keys]
    return rows, wide.to_numpy(dtype=float)
