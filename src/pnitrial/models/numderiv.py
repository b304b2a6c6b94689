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
    """Hessian of scalar f at x; two-level Richardson extrapolation, O(h^4)."""
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
    """Jacobian of array-valued f at x, shape f(x).shape + (len(x),)."""
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
