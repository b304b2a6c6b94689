"""Randomisation (permutation) inference for the intervention effect of a mixed-model estimand.

The arm labels of the trial participants are re-randomised B times keeping the arm sizes, the
model is refitted to every re-randomised design in one batched call (models.batch.fit_rerandomised:
each design's statistics are affine in its arm vector, so no design is built), and the observed
Wald t of the intervention effect at each later visit is compared with its re-randomisation
distribution. p = (1 + #{|t_b| >= |t_obs|}) / (B + 1) (Phipson & Smyth 2010, Stat Appl Genet Mol
Biol 9:39), with its Monte-Carlo SE sqrt(p (1 - p) / B).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Outcome
from pnitrial.data.trial import Trial
from pnitrial.models.batch import fit_batch, fit_rerandomised
from pnitrial.models.design import build_clda_model, build_trial_model
from pnitrial.progress import Progress

BLOCK = 2000  # re-randomisations per batched call, at most
BLOCK_FLOATS = 12_000_000  # and their arm vectors and statistics near 100 MB, however many participants


@dataclass(frozen=True)
class PermutationDesign:
    """A fitted model's design with the columns that carry the arm.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        The observed design.
    y : ndarray, shape (n,)
        Response.
    group : ndarray, shape (n,)
        Participant code per row, 0..m-1.
    arm : ndarray, shape (m,)
        1 for intervention, 0 for control, per participant.
    arm_column : int or None
        Column of the arm main effect (lmm); None for cLDA, which has none.
    interactions : dict of str to (int, int)
        Later visit -> (arm x visit column, visit column).

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> design = permutation_design(frame, meta, pain, "clda")
    >>> design.X.shape, design.arm.tolist(), design.arm_column, design.interactions
    ((12, 3), [1.0, 1.0, 1.0, 0.0, 0.0, 0.0], None, {'post': (2, 1)})
    """

    X: np.ndarray  # (n, p)
    y: np.ndarray
    group: np.ndarray  # participant code per row, 0..m-1
    arm: np.ndarray  # (m,) 1 for intervention
    arm_column: int | None  # the arm main effect (lmm), None for cLDA
    interactions: dict[str, tuple[int, int]]  # visit -> (arm x visit column, visit column)


def permutation_design(frame: pd.DataFrame, meta: Trial, outcome: Outcome, estimand: str) -> PermutationDesign:
    """The random-intercept design of `estimand` ('clda' or 'lmm') and where the arm enters it.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    outcome : Outcome
        The outcome.
    estimand : {"clda", "lmm"}
        The mixed-model estimand.

    Returns
    -------
    PermutationDesign

    Raises
    ------
    ValueError
        Another estimand.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> design = permutation_design(frame, meta, pain, "lmm")
    >>> design.arm_column, design.interactions
    (1, {'post': (3, 2)})
    """
    label = meta.arms["intervention"]
    if estimand == "clda":
        em = build_clda_model(frame, meta, outcome)
        d, arm_col = em.data, None
    elif estimand == "lmm":
        tm = build_trial_model(frame, meta, outcome)
        d = tm.data
        arm_col = d.fixed_names.index(f"arm{label}")
    else:
        raise ValueError(f"permutation inference covers the mixed-model estimands clda and lmm, not {estimand!r}")
    names = list(d.fixed_names)
    inter = {
        v: (names.index(f"arm{label}:visit{v}"), names.index(f"visit{v}"))
        for v in meta.visits[1:]
        if f"arm{label}:visit{v}" in names
    }
    # each participant's arm, in the order of the design's participant codes (first appearance)
    sub = frame[(frame["outcome"] == outcome.key) & frame["role"].isin(["intervention", "control"])]
    for c in meta.covariates:
        sub = sub[sub[c].notna()]
    sub = sub.sort_values(["pid", "visit_index"], kind="stable")
    arm = (sub.groupby("pid", sort=False)["role"].first() == "intervention").to_numpy(dtype=float)
    return PermutationDesign(d.X, d.y, d.group, arm, arm_col, inter)


def arm_parts(pd_: PermutationDesign) -> tuple[np.ndarray, np.ndarray]:
    """The design split into its arm-free part F and its arm-carrying part G (arm = 1): X = F + arm G.

    Parameters
    ----------
    pd_ : PermutationDesign
        The observed design.

    Returns
    -------
    F, G : ndarray, shape (n, p)
        F is X with the arm and arm x visit columns zeroed; G has only those columns, for arm 1.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> design = permutation_design(frame, meta, pain, "clda")
    >>> F, G = arm_parts(design)
    >>> G[:, 2].tolist() == design.X[:, 1].tolist(), bool(np.all(F[:, 2] == 0))
    (True, True)
    """
    F, G = pd_.X.copy(), np.zeros_like(pd_.X)
    if pd_.arm_column is not None:
        F[:, pd_.arm_column] = 0.0
        G[:, pd_.arm_column] = 1.0
    for col, vcol in pd_.interactions.values():
        F[:, col] = 0.0
        G[:, col] = pd_.X[:, vcol]
    return F, G


def wald_t(pd_: PermutationDesign, arms: np.ndarray, cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Wald t of coefficients `cols` in the refit for each re-randomised arm vector (one batch).

    Parameters
    ----------
    pd_ : PermutationDesign
        The observed design.
    arms : ndarray, shape (B, m)
        Re-randomised arm indicators, one row per re-randomisation.
    cols : list of int
        Coefficients to test.

    Returns
    -------
    t : ndarray, shape (B, len(cols))
        beta / se of each coefficient in each fit.
    ok : ndarray of bool, shape (B,)
        Fits that succeeded and converged.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> design = permutation_design(frame, meta, pain, "clda")
    >>> t, ok = wald_t(design, np.array([design.arm, 1 - design.arm]), [2])
    >>> t.round(4).tolist(), ok.tolist()
    ([[-8.7145], [8.7145]], [True, True])
    """
    F, G = arm_parts(pd_)
    fit = fit_rerandomised(F, G, pd_.group, pd_.y, arms)
    se = np.sqrt(fit.vcov[:, cols, cols])
    return fit.beta[:, cols] / se, fit.ok & fit.converged


def outcome_seed(seed: int, key: str) -> np.random.SeedSequence:
    """One reproducible stream per outcome, whatever the order or parallelism of the jobs.

    Parameters
    ----------
    seed : int
        The analysis seed.
    key : str
        Outcome key (its CRC-32 is mixed in).

    Returns
    -------
    numpy.random.SeedSequence

    Examples
    --------
    >>> ss = outcome_seed(2024, "pain")
    >>> ss.entropy, np.random.default_rng(ss).integers(100, size=3).tolist()
    ([2024, 492519974], [16, 78, 9])
    """
    return np.random.SeedSequence([seed, zlib.crc32(key.encode())])


def permutation_test(
    frame: pd.DataFrame, meta: Trial, outcome: Outcome, estimand: str, B: int, seed: int
) -> list[dict]:
    """One row per later visit: observed estimate and t, permutation p, its Monte-Carlo SE.

    Arm labels are permuted B times (arm sizes kept), p = (1 + #{|t_b| >= |t_obs|}) / (B' + 1)
    over the B' refits that converged (Phipson & Smyth 2010, Stat Appl Genet Mol Biol 9:39).

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    outcome : Outcome
        The outcome.
    estimand : {"clda", "lmm"}
        The mixed-model estimand.
    B : int
        Re-randomisations.
    seed : int
        Analysis seed (combined with the outcome key by `outcome_seed`).

    Returns
    -------
    list of dict
        One row per later visit.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> row = permutation_test(frame, meta, pain, "clda", B=99, seed=1)[0]
    >>> row["contrast"], round(row["estimate"], 6), round(row["wald_t"], 4), row["rerandomisations_fitted"]
    ('interaction:post', -2.0, -8.7145, 99)
    >>> round(row["p_permutation"], 6), round(row["mc_se"], 4)
    (0.15, 0.0359)
    """
    pdz = permutation_design(frame, meta, outcome, estimand)
    visits = list(pdz.interactions)
    cols = [pdz.interactions[v][0] for v in visits]
    observed = fit_batch(pdz.X, pdz.group, pdz.y)
    est = observed.beta[0, cols]
    t_obs = est / np.sqrt(observed.vcov[0, cols, cols])
    ok_obs = observed.ok & observed.converged
    rng = np.random.default_rng(outcome_seed(seed, outcome.key))
    exceed = np.zeros(len(cols))
    used = 0
    # per re-randomisation: its arm vector and a few copies of its statistics (one (p+1)^2 block per
    # cluster size); the draws do not depend on the block
    per = len(pdz.arm) + 4 * int(np.bincount(pdz.group).max()) * (pdz.X.shape[1] + 1) ** 2
    block = max(1, min(BLOCK, BLOCK_FLOATS // per))
    progress = Progress(B, f"{outcome.key} permutation test", "re-randomisations", bar=False)
    for start in range(0, B, block):
        k = min(block, B - start)
        arms = np.stack([rng.permutation(pdz.arm) for _ in range(k)])
        t, ok = wald_t(pdz, arms, cols)
        exceed += (np.abs(t[ok]) >= np.abs(t_obs) * (1 - 1e-12)).sum(axis=0)
        used += int(ok.sum())
        progress.advance(k)
    p = (1 + exceed) / (used + 1)
    return [
        {
            "outcome": outcome.key,
            "family": outcome.family,
            "estimand": estimand,
            "contrast": f"interaction:{v}",
            "visit": v,
            "estimate": float(est[j]),
            "wald_t": float(t_obs[j]),
            "p_permutation": float(p[j]),
            "mc_se": float(np.sqrt(p[j] * (1 - p[j]) / max(used, 1))),
            "rerandomisations": B,
            "rerandomisations_fitted": used,
            "n_intervention": int(pdz.arm.sum()),
            "n_control": int(len(pdz.arm) - pdz.arm.sum()),
            "seed": seed,
            "fit_status": "ok" if ok_obs[0] else "not converged",
        }
        for j, v in enumerate(visits)
    ]
