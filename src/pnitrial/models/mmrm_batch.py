"""MMRMs of many outcomes that share a design (a panel's analytes), fitted together.

Each analyte keeps its own rows (its missing values), response, covariance parameters and
optimiser verdict; what the batch shares is the work: the criterion, its gradient and Hessian
are evaluated for every analyte in one pass of array operations (models.mmrm.batch_pieces, the
single fit's own formulas with a leading analyte axis), and a damped Newton iteration
(models.optimise.newton_batch) moves all analytes at once from the empirical-covariance start
mmrm uses as its fallback. An analyte the batch cannot bring to a minimum is returned as None, for
the single fit's full optimiser and fallback chain (models.mmrm.fit_mmrm) to take over.
"""

from __future__ import annotations

import numpy as np

from pnitrial.models.covariance import theta_from
from pnitrial.models.mmrm import (
    MMRMFit,
    RepeatedData,
    _empirical_covariance,
    _Patterns,
    batch_pieces,
    finish,
    prepare,
)
from pnitrial.models.optimise import newton_batch

__all__ = ["fit_mmrm_batch"]

BLOCK_FLOATS = 4_000_000  # cross-product floats per block of analytes (about 32 MB)


def fit_mmrm_batch(datas: list[RepeatedData], structure: str = "us", reml: bool = True) -> list[MMRMFit | None]:
    """Fit one MMRM per outcome, all with the same design columns, visits and covariance structure.

    Parameters
    ----------
    datas : list of RepeatedData
        One outcome each (its own rows), with the same columns and number of visits.
    structure : str
        Covariance structure over visits (models.covariance.STRUCTURES).
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    list of MMRMFit or None
        Each outcome's fit, equal to `fit_mmrm`'s to the optimiser's precision; None where the
        model is refused (`fit_mmrm` raises the reason) or the batch did not reach a minimum with
        the convergence `fit_mmrm` requires.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> m, T = 40, 3
    >>> g = np.repeat(np.arange(m), T); v = np.tile(np.arange(T), m); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(m * T), v == 1, v == 2, arm * (v == 1), arm * (v == 2)]).astype(float)
    >>> names = ("a", "b", "c", "d", "e")
    >>> datas = [RepeatedData(X, X @ [1, 0.5, 0.8, -0.4, s] + rng.normal(size=m * T), g, v, T, names)
    ...          for s in (-0.9, 0.0, 0.9)]
    >>> fits = fit_mmrm_batch(datas, "us")
    >>> [f.converged for f in fits], [round(float(f.beta[4]), 4) for f in fits]
    ([True, True, True], [-0.8723, 0.0271, 0.8697])
    >>> from pnitrial.models.mmrm import fit_mmrm
    >>> max(abs(f.criterion - fit_mmrm(d, "us").criterion) for f, d in zip(fits, datas))  < 1e-9
    True
    """
    out: list[MMRMFit | None] = [None] * len(datas)
    prepared = []
    for i, d in enumerate(datas):
        try:
            prepared.append((i, prepare(d, structure)))
        except (ValueError, np.linalg.LinAlgError):
            continue  # refused: fit_mmrm raises the reason
    block: list = []
    size = 0
    for item in prepared:
        floats = sum(g.XX.size for g in item[1][1])
        if block and size + floats > BLOCK_FLOATS:
            _fit_block(block, datas, structure, reml, out)
            block, size = [], 0
        block.append(item)
        size += floats
    if block:
        _fit_block(block, datas, structure, reml, out)
    return out


def _fit_block(block: list, datas: list[RepeatedData], structure: str, reml: bool, out: list) -> None:
    """The analytes of one block: their patterns merged, one batched Newton, each analyte's fit."""
    T = datas[block[0][0]].n_visits
    b_ols = np.array([pats[0] for _, pats in block])
    n = np.array([datas[i].n for i, _ in block])
    by_t: dict[int, list] = {}
    for a, (_, pats) in enumerate(block):
        for g in pats[1]:
            by_t.setdefault(g.visits.shape[1], []).append((a, g))
    groups = [
        _Patterns(
            np.concatenate([g.visits for _, g in gs]),
            np.concatenate([g.m for _, g in gs]),
            np.concatenate([np.full(len(g.m), a) for a, g in gs]),
            np.concatenate([g.XX for _, g in gs]),
            np.concatenate([g.XY for _, g in gs]),
            np.concatenate([g.YY for _, g in gs]),
        )
        for _, gs in sorted(by_t.items())
    ]
    start = np.array([theta_from(_empirical_covariance(datas[i], pats[1]), structure) for i, pats in block])
    subsets: dict[bytes, tuple] = {}

    def pieces(theta, index, order):
        key = index.tobytes()
        if key not in subsets:
            subsets.clear()
            subsets[key] = _subset(groups, index, len(block))
        return batch_pieces(theta, b_ols[index], subsets[key], n[index], T, structure, reml, order)

    theta, at, converged = newton_batch(start, pieces)
    for a, (i, pats) in enumerate(block):
        cur, j = at[a]
        if not converged[a] or not np.isfinite(cur.criterion[j]):
            continue
        fit = finish(datas[i], structure, reml, theta[a], cur.item(j), True, pats)
        if fit.converged:
            out[i] = fit


def _subset(groups: list[_Patterns], index: np.ndarray, A: int) -> list[_Patterns]:
    """The patterns of the analytes `index` (ascending), owners renumbered 0 .. len(index) - 1."""
    if len(index) == A:
        return groups
    pos = np.full(A, -1)
    pos[index] = np.arange(len(index))
    out = []
    for g in groups:
        keep = pos[g.owner] >= 0
        if keep.any():
            out.append(_Patterns(g.visits[keep], g.m[keep], pos[g.owner[keep]], g.XX[keep], g.XY[keep], g.YY[keep]))
    return out
