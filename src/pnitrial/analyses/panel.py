"""Every estimand for a panel of analytes, fitted in batches.

The same estimands, contrasts and inference as analysis.py (cLDA, the arm x visit LMM and
ANCOVA), computed for all analytes at once with batch.py and batch_inference.py: one design
built from validated columns, each analyte with its own missing values. A random slope is not
in the batched engine; with `random_slope` each analyte goes through the single-fit path.
Rows and columns match analysis.py's, so the same table code gathers both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import TRIAL_ROLES
from pnitrial.failures import fit_status
from pnitrial.inference.contrasts import BatchEstimates, batch_estimates, inference_basis
from pnitrial.inference.wald import wald
from pnitrial.models.batch import BatchFit, fit_batch
from pnitrial.models.design import _covariate_columns, clda_columns, trial_columns, trial_contrasts
from pnitrial.models.ols import fit_ols

EFFECT_KEYS = ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high")
TESTED = ("statistic", "p", "ci_low", "ci_high")  # reported only for fits whose status is ok or singular


def _trial_rows(rows: pd.DataFrame, meta: dict) -> np.ndarray:
    keep = rows["role"].isin(TRIAL_ROLES).to_numpy().copy()
    for c in meta["covariates"]:
        keep &= rows[c].notna().to_numpy()
    return np.flatnonzero(keep)


def _status(fit: BatchFit) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        status = fit_status(fit.converged, fit.singular, fit.sigma**2, fit.var_participant)
    return np.where(~fit.ok, "failed", status).astype(object)


class _Table:
    """Collects effect and fit rows as columns of arrays, one entry per analyte."""

    def __init__(self, keys: list[str], family: str, transform: str, opts: AnalysisOptions):
        self.keys, self.family, self.transform, self.opts = np.array(keys, dtype=object), family, transform, opts
        self.effects: list[pd.DataFrame] = []
        self.fits: list[pd.DataFrame] = []

    def add_effect(self, estimand: str, contrast: str, visit: str, e: BatchEstimates, method: str, status) -> None:
        K = len(self.keys)
        status = np.broadcast_to(np.asarray(status, dtype=object), K).copy()
        finite = np.isfinite(e.estimate) & np.isfinite(e.se) & (e.se > 0)
        status[(status != "failed") & ~finite] = "not estimable: the estimate or its SE is not finite"
        ok = status != "failed"
        # as for trial outcomes: an invalid fit has no test, so no p, no interval, no place in the FDR
        tested = np.isin(status, ("ok", "singular"))
        cols = {k: np.where(tested if k in TESTED else ok & finite, getattr(e, k), np.nan) for k in EFFECT_KEYS}
        cols["df"] = np.where(np.isfinite(cols["df"]), cols["df"], np.nan)
        base = {
            "outcome": self.keys,
            "family": self.family,
            "estimand": estimand,
            "contrast": contrast,
            "visit": visit,
            "primary": estimand == self.opts.primary and contrast.startswith("interaction:"),
            "ddf_method": method,
            "fit_status": status,
            "statistic_type": np.where(ok, e.statistic_type, None),
        }
        self.effects.append(pd.DataFrame({**base, "scale": "model", **cols}))
        if self.transform == "log":
            ratio = dict(cols, estimate=np.exp(cols["estimate"]), se=np.nan)
            ratio.update(ci_low=np.exp(cols["ci_low"]), ci_high=np.exp(cols["ci_high"]))
            self.effects.append(pd.DataFrame({**base, "scale": "ratio", **ratio}))

    def add_fit(self, estimand: str, model: str, ddf: str, visit: str, values: dict) -> None:
        head = {
            "outcome": self.keys,
            "family": self.family,
            "transform": self.transform,
            "estimand": estimand,
            "visit": visit,
            "model": model,
            "ddf_method": ddf,
        }
        self.fits.append(pd.DataFrame({**head, **values}))


def _n_by_role(rows: pd.DataFrame, W: np.ndarray) -> dict[str, np.ndarray]:
    """Participants with at least one value, per role and analyte."""
    out = {}
    for role in TRIAL_ROLES:
        sel = (rows["role"] == role).to_numpy()
        pid = rows["pid"].to_numpy()[sel]
        out[role] = pd.DataFrame(W[sel]).groupby(pid).any().sum(axis=0).to_numpy()
    return out


def _lmm_fit_values(fit: BatchFit, n_role: dict, warnings: list[str]) -> dict:
    return {
        "status": _status(fit),
        "n_participants": fit.n_participants,
        "n_intervention": n_role["intervention"],
        "n_control": n_role["control"],
        "n_obs": fit.n_obs,
        "var_participant": fit.var_participant,
        "var_residual": fit.sigma**2,
        "reml_criterion": fit.criterion,
        "converged": fit.converged,
        "singular": np.where(fit.ok, fit.singular, None),
        # below 1e-10 the scaled gradient is rounding noise: report it as zero, not as noise digits
        "gradient_max": np.where(fit.gradient < 1e-10, 0.0, fit.gradient),
        "warnings": warnings,
        "error": fit.error,
    }


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
    status = _status(fit)
    table.add_fit(
        estimand, f"{model}{covs} + (1 | participant)", opts.ddf, "", _lmm_fit_values(fit, n_role, _fit_warnings(fit))
    )
    return fit, status, inference_basis(fit, opts.ddf)


def analyse_panel(
    rows: pd.DataFrame, values: np.ndarray, meta: dict, panel: dict, opts: AnalysisOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effects and fits of every analyte (columns of `values`); failures are rows, never raised."""
    keys = list(panel["analytes"])
    if opts.random_slope:
        return _one_at_a_time(rows, values, meta, panel, opts)
    table = _Table(keys, panel["family"], panel["transform"], opts)
    idx = _trial_rows(rows, meta)
    sub = rows.iloc[idx].reset_index(drop=True)
    Y = np.log(values[idx]) if panel["transform"] == "log" else values[idx]
    visits = [v for v in meta["visits"] if v in set(sub["visit"])]
    covs = "".join(f" + {c}" for c in meta["covariates"])
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

    for v in meta["visits"][1:]:
        _ancova(sub, Y, meta, v, covs, table, opts)
    eff, fits = _ordered(table, keys)
    return _refit_not_converged(eff, fits, rows, values, meta, panel, opts)


def _refit_not_converged(eff, fits, rows, values, meta, panel, opts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Analytes whose batched fit did not converge go through the single-fit engine and its
    statsmodels fallback; their rows are replaced, in place, by that path's."""
    redo = sorted(set(fits.loc[fits["status"] == "not converged", "outcome"]), key=list(panel["analytes"]).index)
    if not redo:
        return eff, fits
    cols = [list(panel["analytes"]).index(k) for k in redo]
    e2, f2 = _one_at_a_time(rows, values[:, cols], meta, dict(panel, analytes=redo), opts)
    keys = list(panel["analytes"])
    eff = pd.concat([eff[~eff["outcome"].isin(redo)], e2[eff.columns.intersection(e2.columns)]], ignore_index=True)
    fits = pd.concat([fits[~fits["outcome"].isin(redo)], f2], ignore_index=True)
    table = _Table(keys, panel["family"], panel["transform"], opts)
    table.effects, table.fits = [eff], [fits]
    return _ordered(table, keys)


def _ancova(sub: pd.DataFrame, Y: np.ndarray, meta: dict, visit: str, covs: str, table: _Table, opts) -> None:
    """y at `visit` ~ arm + baseline + covariates by OLS on complete pairs, every analyte at once."""
    base_rows = sub.index[sub["visit"] == meta["visits"][0]]
    post_rows = sub.index[sub["visit"] == visit]
    pairs = sub.loc[base_rows, ["pid"]].reset_index().merge(sub.loc[post_rows, ["pid"]].reset_index(), on="pid")
    b, a = pairs["index_x"].to_numpy(), pairs["index_y"].to_numpy()
    basesub = sub.loc[b]
    ccols, _ = _covariate_columns(basesub, meta["covariates"])
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
    """Analyte by analyte, in panel order, estimands as analysis.py writes them."""
    rank = {k: i for i, k in enumerate(keys)}
    eff = pd.concat(table.effects, ignore_index=True)
    eff = eff.iloc[np.argsort(eff["outcome"].map(rank).to_numpy(), kind="stable")].reset_index(drop=True)
    fits = pd.concat(table.fits, ignore_index=True)
    fits = fits.iloc[np.argsort(fits["outcome"].map(rank).to_numpy(), kind="stable")].reset_index(drop=True)
    return eff, fits


def long_from_wide(rows: pd.DataFrame, values: np.ndarray, keys: list[str]) -> pd.DataFrame:
    """The long frame analysis.py reads, for the analytes `keys` (columns of `values`)."""
    parts = []
    for j, k in enumerate(keys):
        ok = np.isfinite(values[:, j])
        parts.append(rows[ok].assign(outcome=k, value=values[ok, j], censored=0, lod=np.nan))
    return pd.concat(parts, ignore_index=True)


def panel_meta(meta: dict, panel: dict) -> dict:
    """The trial metadata with the analytes as outcomes, for the single-fit path."""
    outs = [
        {
            "key": k,
            "column": k,
            "label": k,
            "unit": panel["unit"],
            "family": panel["family"],
            "transform": panel["transform"],
            "lod": None,
            "range": None,
        }
        for k in panel["analytes"]
    ]
    return dict(meta, outcomes=outs)


def _one_at_a_time(rows, values, meta, panel, opts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Structures the batched engine does not cover (random slopes): the exact single-fit engine."""
    keys = list(panel["analytes"])
    frame = long_from_wide(rows, values, keys)
    pmeta = panel_meta(meta, panel)
    eff, fits = [], []
    for k in keys:
        res = analyse_outcome(frame, pmeta, k, opts)
        eff += res.effects
        fits += [{c: v for c, v in f.items() if c != "coefficients"} for f in res.fits]
    return pd.DataFrame(eff), pd.DataFrame(fits)


def wide_from_long(frame: pd.DataFrame, meta: dict, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows (participant x visit) and a values matrix for outcomes `keys` of a long frame."""
    ident = ["pid", "role", "visit", "visit_index", *meta["covariates"]]
    rows = frame[ident].drop_duplicates(["pid", "visit_index"]).sort_values(["pid", "visit_index"], kind="stable")
    rows = rows.reset_index(drop=True)
    wide = frame[frame["outcome"].isin(keys)].pivot(index=["pid", "visit_index"], columns="outcome", values="value")
    wide = wide.reindex(pd.MultiIndex.from_frame(rows[["pid", "visit_index"]]))[keys]
    return rows, wide.to_numpy(dtype=float)
