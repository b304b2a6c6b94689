"""Design matrices built from validated column names, never from user-written formulas.

Coding follows R's defaults so coefficients line up with lme4: treatment contrasts,
the control arm and the baseline visit as references, categorical covariate levels
sorted, main effects before the arm x visit interaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pnitrial.data.codebook import TRIAL_ROLES, Outcome
from pnitrial.data.trial import Trial
from pnitrial.models.engine import ModelData
from pnitrial.models.mmrm import RepeatedData


@dataclass(frozen=True)
class ReferenceGrid:
    """emmeans' reference grid over arm x visit: covariates at their means, factors equally weighted."""

    arms: tuple[str, ...]  # roles: ("control", "intervention")
    visits: tuple[str, ...]
    rows: dict[tuple[str, str], np.ndarray]  # (role, visit) -> L

    def emm(self, role: str, visit: str) -> np.ndarray:
        return self.rows[(role, visit)]


@dataclass(frozen=True)
class TrialModel:
    """y ~ arm * visit: its numeric data, the interaction's columns, emmeans' grid and each row's visit."""

    data: ModelData
    grid: ReferenceGrid
    interaction_columns: tuple[int, ...]
    n_by_role: dict[str, int]
    visit: np.ndarray  # (n,) index of each row's visit among `visits`
    visits: tuple[str, ...]


def trial_rows(frame: pd.DataFrame, outcome: str, covariates: dict) -> pd.DataFrame:
    """Rows of one outcome in the trial arms with complete covariates (R's na.omit)."""
    sub = frame[(frame["outcome"] == outcome) & frame["role"].isin(TRIAL_ROLES)]
    for c in covariates:
        sub = sub[sub[c].notna()]
    return sub.sort_values(["pid", "visit_index"], kind="stable")


def build_trial_model(
    frame: pd.DataFrame,
    meta: Trial,
    outcome: Outcome,
    random_slope: bool = False,
) -> TrialModel:
    """y ~ arm * visit + covariates + (1 | participant) [or (1 + time | participant)], from validated names.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial (visits, arms, covariates).
    outcome : Outcome
        The outcome; a log outcome is modelled on the log scale.
    random_slope : bool
        Add a random slope in time (visit_times, else the visit index).

    Returns
    -------
    TrialModel
        The numeric model, the interaction's columns and emmeans' reference grid.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial()
    >>> pain = trial.outcomes[0]
    >>> model = build_trial_model(frame, trial, pain)
    >>> model.data.fixed_names, model.data.n
    (('(Intercept)', 'armMBPM', 'visitpost', 'armMBPM:visitpost'), 48)
    >>> [(c, v) for c, v, _ in trial_contrasts(model.grid)][:2]
    [('interaction:post', 'post'), ('within:intervention:post', 'post')]
    """
    sub, visits = _longitudinal_rows(frame, meta, outcome)
    cols, names, inter, grid = trial_columns(sub, visits, meta)
    data = _model_data(sub, meta, outcome, cols, names, random_slope)
    per_role = sub.groupby("role")["pid"].nunique()
    n_by_role = {r: int(per_role.get(r, 0)) for r in TRIAL_ROLES}
    visit = _visit_codes(sub, visits)
    return TrialModel(data, grid, tuple(inter), n_by_role, visit, tuple(visits))


def trial_columns(
    sub: pd.DataFrame, visits: list[str], meta: Trial
) -> tuple[list[np.ndarray], list[str], list[int], ReferenceGrid]:
    """Columns of y ~ arm * visit + covariates, the interaction's positions and emmeans' grid."""
    arm_label = meta.arms["intervention"]
    cols, names, is_int, vis_dummies, _, _ = _main_effects(sub, visits, meta, with_arm=True)
    inter = _add_arm_by_visit(cols, names, is_int, vis_dummies, arm_label)
    return cols, names, inter, reference_grid(sub, visits, meta, names)


def reference_grid(sub: pd.DataFrame, visits: list[str], meta: Trial, names: list[str]) -> ReferenceGrid:
    """emmeans' reference grid of a model with these coefficient names, for each arm and visit.

    Numeric covariates at their mean, factor levels weighted equally; the arm enters through
    ``arm<label>`` and ``arm<label>:visit<v>`` where the model has them (the cLDA has only the latter,
    so both arms share the baseline mean).
    """
    covs = meta.covariates
    arm_label = meta.arms["intervention"]
    ccols, cnames = covariate_columns(sub, covs)
    cov_means = {n: float(c.mean()) for n, c in zip(cnames, ccols, strict=True) if n in covs}
    cov_levels = {c: sorted(set(sub[c].astype(str))) for c, k in covs.items() if k["type"] != "numeric"}
    grid_rows = {}
    for role in ("control", "intervention"):
        a = 1.0 if role == "intervention" else 0.0
        for v in visits:
            weights = {"(Intercept)": 1.0, f"arm{arm_label}": a, f"visit{v}": 1.0, f"arm{arm_label}:visit{v}": a}
            weights.update(cov_means)
            for c, levels in cov_levels.items():
                weights.update({f"{c}{lev}": 1.0 / len(levels) for lev in levels[1:]})
            grid_rows[(role, v)] = np.array([weights.get(n, 0.0) for n in names])
    return ReferenceGrid(arms=("control", "intervention"), visits=tuple(visits), rows=grid_rows)


def trial_contrasts(grid: ReferenceGrid) -> list[tuple[str, str, np.ndarray]]:
    """(contrast, visit, L) for every non-baseline visit, as differences of EMMs."""
    base = grid.visits[0]
    out = []
    for v in grid.visits[1:]:
        i_change = grid.emm("intervention", v) - grid.emm("intervention", base)
        c_change = grid.emm("control", v) - grid.emm("control", base)
        out.append((f"interaction:{v}", v, i_change - c_change))
        out.append((f"within:intervention:{v}", v, i_change))
        out.append((f"within:control:{v}", v, c_change))
        out.append((f"between:{v}", v, grid.emm("intervention", v) - grid.emm("control", v)))
    return out


def covariate_columns(sub: pd.DataFrame, covs: dict) -> tuple[list[np.ndarray], list[str]]:
    """Numeric covariates as they are, categorical ones as treatment-coded dummies (R's column names)."""
    cols, names = [], []
    for c, kind in covs.items():
        if kind["type"] == "numeric":
            cols.append(sub[c].to_numpy(dtype=float))
            names.append(c)
        else:
            levels = sorted(set(sub[c].astype(str)))
            for lev in levels[1:]:
                cols.append((sub[c].astype(str) == lev).to_numpy(dtype=float))
                names.append(f"{c}{lev}")
    return cols, names


def _response(sub: pd.DataFrame, outcome: Outcome) -> np.ndarray:
    y = sub["value"].to_numpy(dtype=float)
    return outcome.model_scale(y)


def _random_design(sub: pd.DataFrame, meta: Trial, random_slope: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    if not random_slope:
        return np.ones((len(sub), 1)), ("(Intercept)",)
    times = meta.visit_times
    if not times:
        raise ValueError("random slopes need numeric visit_times in the codebook")
    return np.column_stack([np.ones(len(sub)), sub["visit"].map(times).to_numpy(dtype=float)]), ("(Intercept)", "time")


@dataclass(frozen=True)
class EffectModel:
    """A model whose intervention effect at each later visit is one coefficient."""

    data: ModelData
    effects: dict[str, int]  # visit -> column of the intervention effect
    n_by_role: dict[str, int]
    visit: np.ndarray  # (n,) index of each row's visit among `visits`
    visits: tuple[str, ...]
    grid: ReferenceGrid | None = None  # the arm x visit means the model implies


def build_clda_model(frame: pd.DataFrame, meta: Trial, outcome: Outcome, random_slope: bool = False) -> EffectModel:
    """Constrained longitudinal analysis: y ~ visit + (intervention x later visit) + covariates (Liang & Zeger 2000).

    Baseline is part of the response and both arms share its mean, so the arm enters only after
    baseline (Liang & Zeger 2000, Sankhya B 62:134; Coffman et al. 2016, BMJ Open 6:e013096).
    """
    sub, visits = _longitudinal_rows(frame, meta, outcome)
    cols, names, effects = clda_columns(sub, visits, meta)
    data = _model_data(sub, meta, outcome, cols, names, random_slope)
    per_role = sub.groupby("role")["pid"].nunique()
    n_by_role = {r: int(per_role.get(r, 0)) for r in TRIAL_ROLES}
    grid = reference_grid(sub, visits, meta, names)
    return EffectModel(data, effects, n_by_role, _visit_codes(sub, visits), tuple(visits), grid)


def _visit_codes(sub: pd.DataFrame, visits: list[str]) -> np.ndarray:
    return sub["visit"].map({v: i for i, v in enumerate(visits)}).to_numpy(dtype=int)


def repeated_data(model: TrialModel | EffectModel) -> RepeatedData:
    """The model's data for an MMRM: the same design and response, with each row's visit."""
    d = model.data
    return RepeatedData(d.X, d.y, d.group, model.visit, len(model.visits), d.fixed_names)


def clda_columns(
    sub: pd.DataFrame, visits: list[str], meta: Trial
) -> tuple[list[np.ndarray], list[str], dict[str, int]]:
    """Columns of the cLDA model and, per later visit, the column of the intervention effect."""
    # no arm main effect: both arms share the baseline mean
    cols, names, is_int, vis, _, _ = _main_effects(sub, visits, meta, with_arm=False)
    effects = dict(zip(vis, _add_arm_by_visit(cols, names, is_int, vis, meta.arms["intervention"]), strict=True))
    return cols, names, effects


@dataclass(frozen=True)
class AncovaData:
    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    n_by_role: dict[str, int]


def build_ancova(frame: pd.DataFrame, meta: Trial, outcome: Outcome, visit: str) -> AncovaData:
    """y at `visit` ~ arm + baseline y + covariates, participants with both values (complete pairs)."""
    covs = meta.covariates
    sub = trial_rows(frame, outcome.key, covs)
    base = sub[sub["visit"] == meta.visits[0]].set_index("pid")
    post = sub[sub["visit"] == visit].set_index("pid")
    pids = base.index.intersection(post.index)
    base, post = base.loc[pids], post.loc[pids]
    if len(pids) == 0:
        raise ValueError(f"no participant has both baseline and '{visit}' values")
    arm_label = meta.arms["intervention"]
    ccols, cnames = covariate_columns(base, covs)  # covariates as recorded at baseline
    X = np.column_stack(
        [np.ones(len(pids)), (base["role"] == "intervention").to_numpy(dtype=float), _response(base, outcome), *ccols]
    )
    names = ("(Intercept)", f"arm{arm_label}", "baseline", *cnames)
    per_role = base.groupby("role").size()
    return AncovaData(X, _response(post, outcome), names, {r: int(per_role.get(r, 0)) for r in TRIAL_ROLES})


def _longitudinal_rows(frame: pd.DataFrame, meta: Trial, outcome: Outcome) -> tuple[pd.DataFrame, list[str]]:
    """Trial rows of one outcome and the visits present; baseline and one later visit required."""
    sub = trial_rows(frame, outcome.key, meta.covariates)
    if sub.empty:
        raise ValueError("no observations in the trial arms")
    visits = [v for v in meta.visits if v in set(sub["visit"])]
    if len(visits) < 2 or visits[0] != meta.visits[0]:
        raise ValueError("needs the baseline visit and at least one later visit")
    return sub, visits


def _add_arm_by_visit(
    cols: list[np.ndarray], names: list[str], is_int: np.ndarray, visits: dict[str, np.ndarray], arm_label: str
) -> list[int]:
    """Append intervention x later-visit columns; return their positions."""
    where = []
    for v, col in visits.items():
        where.append(len(cols))
        cols.append(is_int * col)
        names.append(f"arm{arm_label}:visit{v}")
    return where


def _model_data(
    sub: pd.DataFrame, meta: Trial, outcome: Outcome, cols: list[np.ndarray], names: list[str], random_slope: bool
) -> ModelData:
    Z, rnames = _random_design(sub, meta, random_slope)
    return ModelData(
        X=np.column_stack(cols),
        Z=Z,
        y=_response(sub, outcome),
        group=pd.factorize(sub["pid"])[0],
        fixed_names=tuple(names),
        random_names=rnames,
    )


def _main_effects(sub: pd.DataFrame, visits: list[str], meta: Trial, with_arm: bool):
    """Intercept, [arm], later-visit dummies and covariates, in R's column order.

    Returns (columns, names, intervention indicator, visit dummies, covariate columns, covariate names).
    """
    is_int = (sub["role"] == "intervention").to_numpy(dtype=float)
    cols: list[np.ndarray] = [np.ones(len(sub))]
    names = ["(Intercept)"]
    if with_arm:
        cols.append(is_int)
        names.append(f"arm{meta.arms['intervention']}")
    vis = {v: (sub["visit"] == v).to_numpy(dtype=float) for v in visits[1:]}
    for v, col in vis.items():
        cols.append(col)
        names.append(f"visit{v}")
    ccols, cnames = covariate_columns(sub, meta.covariates)
    return cols + ccols, names + cnames, is_int, vis, ccols, cnames
