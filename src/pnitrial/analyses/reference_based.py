"""Missing data as ICH E9(R1) asks: reference-based conditional mean imputation, jackknife, tipping point.

The estimand of a participant who stops (the intercurrent event, ICE: the first visit of a trailing
run of missing values) is set by a strategy: MAR (as if they had stayed on their arm), jump to
reference (JR), copy reference (CR) or copy increments in reference (CIR) (Carpenter, Roger &
Kenward 2013). Missing values are imputed by their conditional mean given the participant's
observed values under an MMRM of the post-baseline visits, the intervention effect at each visit
is the ANCOVA arm coefficient on the completed data, and its SE is the leave-one-participant-out
jackknife (Wolbers et al. 2022, Pharm Stat 21:1246; rbmi's ``method_condmean(type = "jackknife")``).
A delta added to the intervention arm's imputed values gives the tipping point under MAR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from pnitrial.data.trial import Trial
from pnitrial.failures import log
from pnitrial.models.design import covariate_columns, trial_rows
from pnitrial.models.mmrm import RepeatedData, fit_mmrm
from pnitrial.progress import track

STRATEGIES = ("MAR", "JR", "CR", "CIR")
TABLE_LABEL = "ICE table"  # each participant's own strategy from the codebook's intercurrent-event table
COLUMNS = [
    "outcome",
    "family",
    "strategy",
    "delta",
    "delta_sd",
    "visit",
    "contrast",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "statistic",
    "p",
    "lsm_control",
    "lsm_control_se",
    "lsm_intervention",
    "lsm_intervention_se",
    "n_participants",
    "n_imputed_intervention",
    "n_imputed_control",
    "n_ice_intervention",
    "n_ice_control",
    "covariance",
    "scale",
    "status",
]
TIPPING_COLUMNS = [
    "outcome",
    "family",
    "visit",
    "contrast",
    "strategy",
    "estimate",
    "p",
    "tipping_delta",
    "tipping_delta_sd",
    "estimate_at_tipping",
    "direction",
    "scale",
    "status",
]


@dataclass(frozen=True)
class ImputationData:
    """One outcome's randomised participants: post-baseline values (NaN when missing), arm, covariates, ICE."""

    Y: np.ndarray  # (m, T) post-baseline values on the model scale
    arm: np.ndarray  # (m,) 1.0 for the intervention arm
    Z: np.ndarray  # (m, q) baseline value and covariates
    visits: tuple[str, ...]  # the post-baseline visits
    ice: np.ndarray  # (m,) index of the ICE visit, T when there is none
    n_without_baseline: int  # randomised participants left out: no baseline value or covariate
    own_strategy: np.ndarray | None = None  # (m,) each participant's strategy from an ICE table ("" for none)

    @property
    def m(self) -> int:
        return len(self.arm)

    @property
    def T(self) -> int:
        return self.Y.shape[1]


def first_of_trailing_missing(observed: np.ndarray) -> np.ndarray:
    """Each row's ICE: the first visit of its trailing run of missing values (T when the last visit is seen).

    Examples
    --------
    >>> seen = np.array([[1, 1, 1], [1, 0, 1], [1, 0, 0], [0, 0, 0]], dtype=bool)
    >>> first_of_trailing_missing(seen).tolist()
    [3, 3, 1, 0]
    """
    T = observed.shape[1]
    last = np.where(observed.any(axis=1), T - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
    return last + 1


def imputation_data(frame: pd.DataFrame, meta: Trial, key: str, ice: pd.DataFrame | None = None) -> ImputationData:
    """The randomised participants of one outcome with a baseline value, in rbmi's layout.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        The outcome.
    ice : DataFrame, optional
        An intercurrent-event table (``pid``, ``visit``, ``strategy``; `pnitrial.data.ice.read_ice`):
        only its participants have an event, at its visit. Without it, a participant's event is the
        first visit of a trailing run of missing values.

    Returns
    -------
    ImputationData
        Participants ordered by identifier; covariates as recorded at baseline.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial(n=12, visits=("pre", "w4", "w8"), seed=2)
    >>> d = imputation_data(frame, trial, "pain")
    >>> d.Y.shape, d.visits, d.Z.shape[1]
    ((12, 2), ('w4', 'w8'), 1)
    """
    o = meta.outcome(key)
    rows = trial_rows(frame, key, meta.covariates)
    base_visit, later = meta.visits[0], tuple(meta.visits[1:])
    base = rows[rows["visit"] == base_visit].drop_duplicates("pid").set_index("pid").sort_index()
    everyone = rows["pid"].nunique()
    post = rows[rows["visit"].isin(later)]
    wide = post.pivot_table(index="pid", columns="visit", values="value", aggfunc="first")
    wide = wide.reindex(index=base.index, columns=list(later))
    Y = o.model_scale(wide.to_numpy(dtype=float))
    ccols, _ = covariate_columns(base, meta.covariates)
    baseline = o.model_scale(base["value"].to_numpy(dtype=float))
    Z = np.column_stack([baseline, *ccols])
    arm = (base["role"] == "intervention").to_numpy(dtype=float)
    if ice is None:
        return ImputationData(Y, arm, Z, later, first_of_trailing_missing(np.isfinite(Y)), everyone - len(base))
    table = ice.drop_duplicates("pid").set_index("pid")
    listed = base.index.isin(table.index)
    at = np.full(len(base), len(later))
    at[listed] = [later.index(v) for v in table.loc[base.index[listed], "visit"]]
    own = np.full(len(base), "", dtype=object)
    own[listed] = table.loc[base.index[listed], "strategy"].to_numpy()
    return ImputationData(Y, arm, Z, later, at, everyone - len(base), own)


def _design(arm: np.ndarray, Z: np.ndarray, T: int) -> np.ndarray:
    """Rows (participant x visit) of y ~ arm * visit + baseline * visit + covariates, shape (m, T, p)."""
    m = len(arm)
    eye = np.eye(T)[:, 1:]  # later-visit dummies
    vis = np.broadcast_to(eye, (m, T, T - 1))
    parts = [
        np.ones((m, T, 1)),
        np.broadcast_to(arm[:, None, None], (m, T, 1)),
        vis,
        vis * arm[:, None, None],
        np.broadcast_to(Z[:, None, :], (m, T, Z.shape[1])),
        vis * Z[:, None, :1],  # baseline x visit: the baseline's slope differs by visit
    ]
    return np.concatenate(parts, axis=2)


@dataclass(frozen=True)
class ImputationModel:
    """The fitted imputation model: its coefficients and covariance over the post-baseline visits."""

    beta: np.ndarray
    sigma: np.ndarray
    structure: str
    theta: np.ndarray | None = None


def fit_imputation_model(
    d: ImputationData, keep: np.ndarray, structures: tuple[str, ...] = ("us",), start: ImputationModel | None = None
) -> ImputationModel:
    """REML MMRM of the observed post-baseline values of the participants in `keep` (rbmi's imputation model).

    One post-baseline visit makes it a linear model (its residual variance by REML). The first
    structure that converges is used; `start` warm-starts the jackknife's refits.
    """
    Y, arm, Z = d.Y[keep], d.arm[keep], d.Z[keep]
    X3 = _design(arm, Z, d.T)
    seen = np.isfinite(Y)
    X, y = X3[seen], Y[seen]
    if d.T == 1:
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        dof = len(y) - np.linalg.matrix_rank(X)
        if dof <= 0:
            raise ValueError("too few observed values for the imputation model")
        return ImputationModel(beta, np.array([[float(np.sum((y - X @ beta) ** 2)) / dof]]), "variance")
    has = seen.any(axis=1)
    group = np.repeat(np.cumsum(has) - 1, seen.sum(axis=1))
    visit = np.nonzero(seen)[1]
    names = tuple(f"x{k}" for k in range(X.shape[1]))
    data = RepeatedData(X, y, group, visit, d.T, names)
    errors = []
    for structure in structures:
        try:
            warm = start.theta if start is not None and start.structure == structure else None
            fit = fit_mmrm(data, structure, reml=True, start_theta=warm)
        except ValueError as exc:
            errors.append(f"{structure}: {exc}")
            continue
        if fit.converged and fit.positive_definite:
            return ImputationModel(fit.beta, fit.sigma, structure, fit.theta)
        errors.append(f"{structure}: did not converge")
    raise ValueError("imputation model: " + "; ".join(errors))


def strategy_means(mu_own: np.ndarray, mu_ref: np.ndarray, ice: np.ndarray, strategy: str) -> np.ndarray:
    """Each participant's mean vector under a strategy (Carpenter, Roger & Kenward 2013, J Biopharm Stat 23:1352).

    MAR keeps the own arm's means; JR takes the reference arm's from the ICE on; CR takes the
    reference arm's at every visit; CIR adds the reference arm's increments from the last visit
    before the ICE to the own mean there (the reference means when the ICE is the first visit).

    Examples
    --------
    >>> own, ref = np.array([[10.0, 8.0, 6.0]]), np.array([[10.0, 9.5, 9.0]])
    >>> [strategy_means(own, ref, np.array([2]), s).tolist()[0] for s in STRATEGIES]
    [[10.0, 8.0, 6.0], [10.0, 8.0, 9.0], [10.0, 9.5, 9.0], [10.0, 8.0, 7.5]]
    """
    if strategy == "MAR":
        return mu_own
    if strategy == "CR":
        return mu_ref
    T = mu_own.shape[1]
    after = np.arange(T)[None, :] >= ice[:, None]
    if strategy == "JR":
        return np.where(after, mu_ref, mu_own)
    if strategy == "CIR":
        last = np.clip(ice - 1, 0, T - 1)[:, None]
        own_last = np.take_along_axis(mu_own, last, axis=1)
        ref_last = np.take_along_axis(mu_ref, last, axis=1)
        cir = np.where(after, own_last + mu_ref - ref_last, mu_own)
        return np.where((ice == 0)[:, None], mu_ref, cir)
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")


def participant_means(mu_own: np.ndarray, mu_ref: np.ndarray, ice: np.ndarray, strategy: np.ndarray) -> np.ndarray:
    """`strategy_means` with each participant's own strategy (rbmi's ``data_ice``)."""
    out = mu_own.copy()
    for s in np.unique(strategy):
        rows = strategy == s
        out[rows] = strategy_means(mu_own[rows], mu_ref[rows], ice[rows], str(s))
    return out


def conditional_mean_imputation(Y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Missing values replaced by their mean given the observed ones (Wolbers et al. 2022, Pharm Stat 21:1246).

    ``mu_M + Sigma_MO Sigma_OO^-1 (y_O - mu_O)`` per participant; with nothing observed, the means.

    Examples
    --------
    >>> S = np.array([[4.0, 2.0], [2.0, 4.0]])
    >>> conditional_mean_imputation(np.array([[12.0, np.nan]]), np.array([[10.0, 10.0]]), S).tolist()
    [[12.0, 11.0]]
    """
    out = Y.copy()
    seen = np.isfinite(Y)
    patterns, which = np.unique(seen, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        if pattern.all():
            continue
        rows = np.flatnonzero(which.ravel() == k)
        o, miss = np.flatnonzero(pattern), np.flatnonzero(~pattern)
        fill = mu[np.ix_(rows, miss)]
        if len(o):
            K = np.linalg.solve(sigma[np.ix_(o, o)], sigma[np.ix_(o, miss)])
            fill = fill + (Y[np.ix_(rows, o)] - mu[np.ix_(rows, o)]) @ K
        out[np.ix_(rows, miss)] = fill
    return out


def _ancova_rows(arm: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows r with r @ y = the arm coefficient and the control arm's least-squares mean of y ~ arm + Z.

    The least-squares mean averages the prediction over the participants' own covariates (rbmi's
    counterfactual weights, equal to the covariates at their mean in a linear model).
    """
    X = np.column_stack([np.ones(len(arm)), arm, Z])
    pinv = np.linalg.pinv(X)
    ref = np.r_[1.0, 0.0, Z.mean(axis=0)] @ pinv
    return pinv[1], ref


@dataclass(frozen=True)
class _Replicate:
    """One fit (all participants or one left out): per label the effect and control LS mean per visit."""

    effect: dict[str, np.ndarray]  # label -> (T,)
    lsm: dict[str, np.ndarray]  # label -> (T,) control arm's least-squares mean
    slope: dict[
        str, np.ndarray
    ]  # label -> (T,) change of the effect per unit delta on the intervention arm's imputed values
    lsm_slope: dict[str, np.ndarray]

    def merged(self, other: _Replicate) -> _Replicate:
        return _Replicate(
            {**self.effect, **other.effect},
            {**self.lsm, **other.lsm},
            {**self.slope, **other.slope},
            {**self.lsm_slope, **other.lsm_slope},
        )


def _replicate(d: ImputationData, keep: np.ndarray, model: ImputationModel, labels: dict) -> _Replicate:
    """Impute under every label's per-participant strategies and run the ANCOVA at each visit."""
    Y, arm, Z, ice = d.Y[keep], d.arm[keep], d.Z[keep], d.ice[keep]
    X_own, X_ref = _design(arm, Z, d.T), _design(np.zeros_like(arm), Z, d.T)
    mu_own, mu_ref = X_own @ model.beta, X_ref @ model.beta
    r_trt, r_ref = _ancova_rows(arm, Z)
    effect, lsm = {}, {}
    for label, strategy in labels.items():
        filled = conditional_mean_imputation(Y, participant_means(mu_own, mu_ref, ice, strategy[keep]), model.sigma)
        effect[label], lsm[label] = r_trt @ filled, r_ref @ filled
    shifted = (~np.isfinite(Y)) * arm[:, None]  # a delta on the intervention arm's imputed values
    slope, lsm_slope = r_trt @ shifted, r_ref @ shifted
    return _Replicate(effect, lsm, dict.fromkeys(labels, slope), dict.fromkeys(labels, lsm_slope))


def _jackknife(
    d: ImputationData, drop: np.ndarray, strategies, structures
) -> tuple[ImputationModel, _Replicate, list, list[str]]:
    """The full-data fit and every leave-one-out refit, all with one covariance structure.

    The model is fitted without the values in `drop` (observed after an event under a
    reference-based strategy); the imputation still conditions on them, as rbmi does. A structure
    is used only when the full data and every replicate converge with it; otherwise the next one
    is tried, so that the jackknife never mixes structures.
    """
    fitted = replace(d, Y=np.where(drop, np.nan, d.Y)) if drop.any() else d
    everyone = np.ones(d.m, dtype=bool)
    notes, last = [], None
    for k, structure in enumerate(structures):
        try:
            full_model = fit_imputation_model(fitted, everyone, (structure,))
            loo = []
            for j in range(d.m):
                keep = everyone.copy()
                keep[j] = False
                model = fit_imputation_model(fitted, keep, (full_model.structure,), start=full_model)
                loo.append(_replicate(d, keep, model, strategies))
        except ValueError as exc:
            last = exc
            if k + 1 < len(structures):
                notes.append(f"{structure} not used ({exc})")
            continue
        return full_model, _replicate(d, everyone, full_model, strategies), loo, notes
    raise ValueError(str(last))


def jackknife_se(leave_one_out: np.ndarray) -> np.ndarray:
    """The jackknife SE from leave-one-out estimates (rows): sqrt((n-1)/n sum (theta_j - mean)^2) (Efron 1982).

    Examples
    --------
    >>> round(float(jackknife_se(np.array([1.0, 2.0, 3.0]))), 6)
    1.154701
    """
    n = leave_one_out.shape[0]
    dev = leave_one_out - leave_one_out.mean(axis=0)
    return np.sqrt((n - 1) / n * np.sum(dev**2, axis=0))


def tipping_delta(a: float, b: float, a_j: np.ndarray, b_j: np.ndarray, alpha: float) -> tuple[float, float]:
    """The delta at which the MAR effect a + b delta stops being significant; and the effect there.

    The effect and each jackknife replicate are linear in delta, so the squared z statistic is a
    ratio of quadratics and the crossing of z_(1-alpha/2) solves a quadratic. Delta moves the
    intervention arm's imputed values toward the null (its sign opposes the effect's).
    """
    z = stats.norm.ppf(1 - alpha / 2)
    n = len(a_j)
    da, db = a_j - a_j.mean(), b_j - b_j.mean()
    # (a + b x)^2 = z^2 (n-1)/n sum (da + db x)^2
    k = z**2 * (n - 1) / n
    A = b**2 - k * float(db @ db)
    B = 2 * (a * b - k * float(da @ db))
    C = a**2 - k * float(da @ da)
    if C <= 0:
        return 0.0, a  # not significant without any delta
    roots = np.roots([A, B, C]) if abs(A) > 1e-300 else np.array([-C / B]) if B else np.array([])
    roots = np.real(roots[np.isreal(roots)])
    toward = -math.copysign(1.0, a * b) if b else 0.0  # the direction that shrinks the effect
    good = [r for r in roots if r * toward > 0] if toward else list(roots)
    if not good:
        return math.nan, math.nan
    x = min(good, key=abs)
    return float(x), float(a + b * x)


def reference_based(
    frame: pd.DataFrame,
    meta: Trial,
    key: str,
    strategies: tuple[str, ...] = STRATEGIES,
    deltas: tuple[float, ...] = (),
    alpha: float = 0.05,
    structures: tuple[str, ...] = ("us", "toeph", "ar1h", "cs"),
    shifts_toward_null: tuple[float, ...] = (),
    ice: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference-based conditional mean imputation of one outcome under each strategy, jackknife SEs.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial; the control arm is the reference.
    key : str
        The outcome.
    strategies : tuple of str, optional
        Any of MAR, JR, CR and CIR.
    deltas : tuple of float, optional
        Shifts (model scale) of the intervention arm's imputed values, as given: one row each
        under every strategy (``<strategy>+delta``).
    alpha : float, optional
        For the intervals and the tipping point.
    structures : tuple of str, optional
        Covariance structures of the imputation model, the first that converges used.
    shifts_toward_null : tuple of float, optional
        More deltas, their magnitudes taken in the direction that shrinks the first strategy's
        effect at the last visit (a tipping-point grid).
    ice : DataFrame, optional
        An intercurrent-event table (`imputation_data`): its participants' events and their own
        strategies, reported as the strategy ``ICE table`` beside the global ones.

    Returns
    -------
    effects : DataFrame
        `COLUMNS`: per strategy (and delta) and visit, the effect, its jackknife SE, normal CI and
        p, and both arms' least-squares means.
    tipping : DataFrame
        `TIPPING_COLUMNS`: per strategy and visit, the delta at which the effect loses significance.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial(n=30, visits=("pre", "w4", "w8"), effect=-2.0, seed=4)
    >>> frame = frame[~((frame["pid"] % 5 == 0) & (frame["visit"] == "w8"))]  # some drop out
    >>> effects, tipping = reference_based(frame, trial, "pain", ("MAR", "JR"))
    >>> print(effects[["strategy", "visit", "estimate", "se"]].round(2).to_string(index=False))
    strategy visit  estimate   se
         MAR    w4     -1.73 0.52
         MAR    w8     -2.30 0.45
          JR    w4     -1.73 0.52
          JR    w8     -1.84 0.43
    """
    o = meta.outcome(key)
    d = imputation_data(frame, meta, key, ice)
    has_ice = d.ice < d.T
    # each label's strategy per participant; participants without an event are missing at random
    labels = {s: np.where(has_ice, s, "MAR").astype(object) for s in strategies}
    if d.own_strategy is not None and has_ice.any():
        labels[TABLE_LABEL] = np.where(has_ice, d.own_strategy, "MAR").astype(object)
    # values observed at or after an event leave the imputation model under a reference-based
    # strategy but stay in the data, conditioned on and analysed (rbmi); only missing values are
    # imputed and shifted by a delta. Labels that drop the same values share their fits.
    after = np.arange(d.T)[None, :] >= d.ice[:, None]
    groups: dict[bytes, tuple[np.ndarray, dict]] = {}
    for label, strategy in labels.items():
        drop = after & (strategy != "MAR")[:, None] & np.isfinite(d.Y)
        groups.setdefault(drop.tobytes(), (drop, {}))[1][label] = strategy
    empty = _Replicate({}, {}, {}, {})
    full, loo, structures_used, notes = empty, [empty] * d.m, [], []
    for drop, group in groups.values():
        model, f, replicates, n = _jackknife(d, drop, group, structures)
        structures_used.append(model.structure)
        notes += n
        full = full.merged(f)
        loo = [a.merged(r) for a, r in zip(loo, replicates, strict=True)]
    covariance = "/".join(dict.fromkeys(structures_used))
    z = stats.norm.ppf(1 - alpha / 2)
    base = {
        "outcome": key,
        "family": o.family,
        "n_participants": d.m,
        "n_ice_intervention": int((has_ice & (d.arm == 1)).sum()),
        "n_ice_control": int((has_ice & (d.arm == 0)).sum()),
        "covariance": covariance,
        "scale": "model",
        "status": "ok",
    }
    for note in notes:
        log.warning("%s reference-based imputation: %s", key, note)
    missing = ~np.isfinite(d.Y)
    rows = []

    def add(strategy, delta, est, est_j, lsm, lsm_j):
        se, lsm_se = jackknife_se(est_j), jackknife_se(lsm_j)
        alt, alt_j = lsm + est, lsm_j + est_j
        alt_se = jackknife_se(alt_j)
        for t, visit in enumerate(d.visits):
            stat = est[t] / se[t] if se[t] > 0 else math.nan
            rows.append(
                dict(
                    base,
                    strategy=strategy,
                    delta=delta,
                    visit=visit,
                    contrast=f"ancova:{visit}",
                    n_imputed_intervention=int(missing[d.arm == 1, t].sum()),
                    n_imputed_control=int(missing[d.arm == 0, t].sum()),
                    estimate=est[t],
                    se=se[t],
                    ci_low=est[t] - z * se[t],
                    ci_high=est[t] + z * se[t],
                    statistic=stat,
                    p=2 * stats.norm.sf(abs(stat)) if math.isfinite(stat) else math.nan,
                    lsm_control=lsm[t],
                    lsm_control_se=lsm_se[t],
                    lsm_intervention=alt[t],
                    lsm_intervention_se=alt_se[t],
                )
            )

    # every strategy's effect and each jackknife replicate are linear in a delta added to the
    # intervention arm's imputed values, with a slope that does not depend on the strategy
    if shifts_toward_null:
        first = next(iter(labels))
        a0, b0 = full.effect[first][-1], full.slope[first][-1]
        worse = -np.sign(a0 * b0) if b0 else -np.sign(a0)
        deltas = tuple(deltas) + tuple(abs(x) * (worse or 1.0) for x in shifts_toward_null)
    tips = []
    arm_label = meta.arms["intervention"]
    for s in labels:
        a, a_j = full.effect[s], np.array([r.effect[s] for r in loo])
        la, la_j = full.lsm[s], np.array([r.lsm[s] for r in loo])
        b, b_j = full.slope[s], np.array([r.slope[s] for r in loo])
        lb, lb_j = full.lsm_slope[s], np.array([r.lsm_slope[s] for r in loo])
        add(s, math.nan, a, a_j, la, la_j)
        for delta in deltas:
            add(f"{s}+delta", float(delta), a + b * delta, a_j + b_j * delta, la + lb * delta, la_j + lb_j * delta)
        for t, visit in enumerate(d.visits):
            x, at = tipping_delta(float(a[t]), float(b[t]), a_j[:, t], b_j[:, t], alpha)
            p0 = next(r["p"] for r in rows if r["strategy"] == s and r["visit"] == visit)
            nothing = not bool(b[t]) and not np.any(b_j[:, t])
            significant = math.isfinite(p0) and p0 < alpha
            tips.append(
                {
                    "outcome": key,
                    "family": o.family,
                    "visit": visit,
                    "contrast": f"ancova:{visit}",
                    "strategy": s,
                    "estimate": float(a[t]),
                    "p": p0,
                    "tipping_delta": x if significant and not nothing else math.nan,
                    "estimate_at_tipping": at if significant and not nothing else math.nan,
                    "direction": f"{'raises' if x > 0 else 'lowers'} the {arm_label} arm's imputed values"
                    if significant and not nothing and math.isfinite(x)
                    else "",
                    "scale": "model",
                    "status": "no missing values in the intervention arm: nothing to tip"
                    if nothing
                    else ("ok" if significant else f"not significant under {s} (p >= {alpha:g}): no tipping point"),
                }
            )
    log.info("%s: reference-based imputation of %d participants, %d with an ICE", key, d.m, int(has_ice.sum()))
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(tips, columns=TIPPING_COLUMNS)


def missing_data_analysis(
    frame: pd.DataFrame,
    meta: Trial,
    strategies: tuple[str, ...] = STRATEGIES,
    delta_sd: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
    delta: tuple[float, ...] = (),
    alpha: float = 0.05,
    structures: tuple[str, ...] = ("us", "toeph", "ar1h", "cs"),
    max_participants: int = 2000,
    ice: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`reference_based` for every outcome; deltas in units of the pooled baseline SD; failures as rows.

    Log outcomes get ``ratio`` rows beside the model-scale ones (estimate, CI and LS means back-transformed).

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    strategies : tuple of str, optional
        The strategies (MAR is needed for the deltas and the tipping point).
    delta_sd : tuple of float, optional
        Deltas as multiples of each outcome's pooled baseline SD (model scale), added to the
        intervention arm's imputed values in the direction that shrinks the effect at the last
        visit (toward the null: the tipping-point grid), under every strategy.
    delta : tuple of float, optional
        Deltas in model-scale units, as given (the same for every outcome).
    alpha : float, optional
        For the intervals and the tipping point.
    structures : tuple of str, optional
        Covariance structures of the imputation model, in order of preference.
    max_participants : int, optional
        Above this many participants the outcome is not analysed (a row says so): the jackknife
        refits the MMRM once per participant.
    ice : DataFrame, optional
        The codebook's intercurrent-event table (`pnitrial.data.ice.read_ice`), for every outcome.

    Returns
    -------
    effects, tipping : DataFrame
        As `reference_based`, over all outcomes, with ``delta_sd`` and ``tipping_delta_sd``.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial(n=30, visits=("pre", "w4", "w8"), effect=-2.0, seed=4)
    >>> frame = frame[~((frame["pid"] % 5 == 0) & (frame["visit"] == "w8"))]  # some drop out
    >>> effects, tipping = missing_data_analysis(frame, trial, ("MAR", "JR"), (0.0, 0.5))
    >>> print(effects[effects["visit"] == "w8"][["strategy", "delta_sd", "estimate", "se"]].round(2).to_string())
         strategy  delta_sd  estimate    se
    1         MAR       NaN     -2.30  0.45
    3   MAR+delta       0.0     -2.30  0.45
    5   MAR+delta       0.5     -2.13  0.46
    7          JR       NaN     -1.84  0.43
    9    JR+delta       0.0     -1.84  0.43
    11   JR+delta       0.5     -1.67  0.49
    """
    from pnitrial.analyses.effect_sizes import baseline_sds
    from pnitrial.failures import failure_status

    sds = baseline_sds(frame, meta).set_index("outcome")["sd"].to_dict()
    tables, tips = [], []
    for o in track(meta.outcomes, len(meta.outcomes), "reference-based imputation"):
        sd = sds.get(o.key, math.nan)
        toward = tuple(k * sd for k in delta_sd) if math.isfinite(sd) else ()
        m = int(
            frame.loc[(frame["outcome"] == o.key) & frame["role"].isin(("intervention", "control")), "pid"].nunique()
        )
        try:
            if m > max_participants:
                raise _TooMany(
                    f"not run: {m} participants (the jackknife refits the MMRM once per participant; "
                    f"missing_data.max_participants is {max_participants})"
                )
            eff, tip = reference_based(
                frame, meta, o.key, strategies, tuple(delta), alpha, structures, shifts_toward_null=toward, ice=ice
            )
        except Exception as exc:  # noqa: BLE001 - a failed analysis is a row
            status = str(exc) if isinstance(exc, _TooMany) else failure_status(exc)
            log.warning("%s reference-based imputation: %s", o.key, status, exc_info=True)
            eff = pd.DataFrame(
                [{"outcome": o.key, "family": o.family, "strategy": s, "status": status} for s in strategies],
                columns=COLUMNS,
            )
            tip = pd.DataFrame(
                [{"outcome": o.key, "family": o.family, "strategy": s, "status": status} for s in strategies],
                columns=TIPPING_COLUMNS,
            )
        eff["delta_sd"] = eff["delta"] / sd if math.isfinite(sd) and sd > 0 else math.nan
        tip["tipping_delta_sd"] = tip["tipping_delta"] / sd if math.isfinite(sd) and sd > 0 else math.nan
        tables.append(eff)
        if o.is_log:
            tables.append(_ratio_rows(eff))
        tips.append(tip)
    effects = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    tipping = pd.concat(tips, ignore_index=True) if tips else pd.DataFrame(columns=TIPPING_COLUMNS)
    return effects[COLUMNS], tipping[TIPPING_COLUMNS]


class _TooMany(ValueError):
    """An outcome with more participants than the jackknife is allowed to refit."""


def _ratio_rows(eff: pd.DataFrame) -> pd.DataFrame:
    """A log outcome's effects as ratios (intervention / control) and its LS means as geometric means."""
    ok = eff[eff["status"] == "ok"].copy()
    for c in ("estimate", "ci_low", "ci_high", "lsm_control", "lsm_intervention"):
        ok[c] = np.exp(ok[c].astype(float))
    for c in ("se", "statistic", "lsm_control_se", "lsm_intervention_se"):
        ok[c] = math.nan
    return ok.assign(scale="ratio")
