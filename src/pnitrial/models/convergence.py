"""lme4's rules for a converged optimum and a boundary fit, shared by every optimiser in the package.

An optimum is converged when it is a minimum and its Hessian-scaled gradient |g| / sqrt(H) is
below GRADIENT_TOL (lme4's checkConv); a fit is singular when a diagonal element of the relative
Cholesky factor theta is below SINGULAR_TOL (lme4's isSingular).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GRADIENT_TOL", "SINGULAR_TOL", "converged", "singular"]

SINGULAR_TOL = 1e-4
GRADIENT_TOL = 2e-3


def converged(scaled_gradient, minimum):
    """Whether an optimum passes lme4's convergence check; works on scalars and on arrays of outcomes.

    Examples
    --------
    >>> bool(converged(1e-5, True)), bool(converged(0.01, True)), bool(converged(1e-5, False))
    (True, False, False)
    """
    return np.logical_and(minimum, np.asarray(scaled_gradient) < GRADIENT_TOL)


def singular(theta_diagonal):
    """Whether a relative standard deviation sits on the boundary (lme4's isSingular default).

    Examples
    --------
    >>> bool(singular(0.0)), bool(singular(0.3))
    (True, False)
    """
    return np.asarray(theta_diagonal) < SINGULAR_TOL
