"""Fitting the mixed models of the estimands: a random intercept, or an MMRM with its fallback chain.

Kept apart from analyses.estimands, which builds the rows; both the trial (`lmm`) and the cLDA model
go through `fit_mixed`, which chooses the covariance from the options, refuses an arm too small to
support a model, and binds the fit to its inference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pnitrial.inference.contrasts import Inference
from pnitrial.models.design import repeated_data
from pnitrial.models.engine import LMMFit
from pnitrial.models.fallback import fit_with_fallback
from pnitrial.models.mmrm import MMRMFit, RepeatedData, fit_mmrm

if TYPE_CHECKING:
    from pnitrial.analyses.estimands import AnalysisOptions

__all__ = ["MIN_PER_ARM", "enough_per_arm", "fit_mixed", "fit_mmrm_chain", "re_term"]


MIN_PER_ARM = 2  # a model needs at least two participants with the outcome in each arm


def enough_per_arm(n_by_role: dict[str, int], what: str) -> None:
    """Refuse a model an arm cannot support (a one-participant arm has no within-arm variance)."""
    for role in ("intervention", "control"):
        if n_by_role.get(role, 0) < MIN_PER_ARM:
            raise ValueError(f"{n_by_role.get(role, 0)} participant(s) of the {role} arm in {what}; need {MIN_PER_ARM}")


def re_term(opts: AnalysisOptions, covariance: str = "random-intercept") -> str:
    if covariance != "random-intercept":
        return f" + {covariance}(visit | participant)"
    return " + (1 + time | participant)" if opts.random_slope else " + (1 | participant)"


def fit_mixed(model, what: str, opts: AnalysisOptions) -> tuple[LMMFit | MMRMFit, Inference, str, list[str]]:
    """Fit a trial or cLDA model and bind its inference to the ddf method.

    A random-intercept model goes through the engine (with its fallback optimiser); an MMRM tries
    the configured structure, then each fallback structure in order, and says which it used.
    """
    enough_per_arm(model.n_by_role, what)
    chosen = opts.structure(len(model.visits))
    if chosen == "random-intercept":
        if not opts.reml:
            raise ValueError("the random-intercept model is fitted by REML (model.reml: false needs an MMRM structure)")
        fit = fit_with_fallback(model.data)
        return fit, Inference(fit, opts.ddf, opts.alpha), chosen, []
    fit, inf, notes = fit_mmrm_chain(repeated_data(model), chosen, opts)
    return fit, inf, fit.structure, notes


def fit_mmrm_chain(
    data: RepeatedData, chosen: str, opts: AnalysisOptions, first: MMRMFit | None = None
) -> tuple[MMRMFit, Inference, list[str]]:
    """An MMRM with `chosen` covariance, else each of `opts.covariance_fallback` in order, and its inference.

    The first structure that converges to a positive-definite covariance is used; the notes say which
    structures failed and why, and which one stands in for `chosen`. `first`, a fit of `chosen` made
    elsewhere (a panel's batch, models.mmrm_batch), is taken as that structure's fit when given.
    """
    notes: list[str] = []
    fit = None
    for structure in dict.fromkeys((chosen, *opts.covariance_fallback)):
        try:
            fit = first if first is not None and structure == chosen else fit_mmrm(data, structure, reml=opts.reml)
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"{structure}: {exc}")
            continue
        if fit.converged and fit.positive_definite:
            break
        notes.append(f"{structure} did not converge")
    if fit is None:
        raise ValueError("no covariance structure could be fitted: " + "; ".join(notes))
    if fit.structure != chosen:
        notes.append(f"covariance {fit.structure} used in place of {chosen}")
    if opts.ddf.startswith("kenward-roger") and not opts.reml:
        raise ValueError("Kenward-Roger is defined for REML fits only (model.reml is false)")
    return fit, Inference(fit, opts.ddf, opts.alpha), notes
