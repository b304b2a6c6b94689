"""Richardson-extrapolated central differences for Hessians and Jacobians.

lmerTest obtains these by numDeriv; any accurate differentiation gives the same
Satterthwaite df to far better than the 1e-3 relative tolerance we test at.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _steps(x: np.ndarray, rel: float = 1e-3, floor: float = 1e-4) -> np.ndarray:
    return np.maximum(rel * np.abs(x), floor)


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Hessian of scalar f at x; two-level Richardson extrapolation, O(h^4).

    Central second differences at steps h and h/2 (h = max(1e-3 |x|, 1e-4)) combined as
    (4 H(h/2) - H(h)) / 3 (Richardson 1911, Phil Trans R Soc A 210:307).

    Parameters
    ----------
    f : callable
        Scalar function of a 1-D array.
    x : array_like, shape (k,)
        The point.

    Returns
    -------
    ndarray, shape (k, k)
        The symmetric matrix of second derivatives.

    Examples
    --------
    >>> H = hessian(lambda x: x[0] ** 2 * x[1] + np.exp(x[1]), np.array([1.0, 0.0]))
    >>> H.round(6).tolist()
    [[0.0, 2.0], [2.0, 1.0]]
    """
    x = np.asarray(x, dtype=float)
    k = len(x)
    h0 = _steps(x)

    def level(h: np.ndarray) -> np.ndarray:
        H = np.empty((k, k))
        f0 = f(x)
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                    4 * h[i] * h[j]
                )
        return H

    coarse, fine = level(h0), level(h0 / 2)
    return (4 * fine - coarse) / 3


def jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Jacobian of array-valued f at x, shape f(x).shape + (len(x),).

    Central differences at steps h and h/2, Richardson-extrapolated to O(h^4).

    Parameters
    ----------
    f : callable
        Array-valued function of a 1-D array.
    x : array_like, shape (k,)
        The point.

    Returns
    -------
    ndarray, shape f(x).shape + (k,)
        Derivatives of every output in every coordinate of x (last axis).

    Examples
    --------
    >>> J = jacobian(lambda x: np.array([x[0] * x[1], np.sin(x[0])]), np.array([2.0, 3.0]))
    >>> J.round(6).tolist()
    [[3.0, 2.0], [-0.416147, 0.0]]
    """
    x = np.asarray(x, dtype=float)
    h0 = _steps(x)
    out = []
    for i in range(len(x)):
        e = np.zeros(len(x))

        def central(h: float, i: int = i, e: np.ndarray = e) -> np.ndarray:
            e[i] = h
            return (f(x + e) - f(x - e)) / (2 * h)

        out.append((4 * central(h0[i] / 2) - central(h0[i])) / 3)
    return np.stack(out, axis=-1)
