"""The optimiser core: minimising the profiled (RE)ML criterion, and lme4's convergence rules.

A random-intercept model (one outcome or thousands) is minimised in lambda = theta^2 with the
closed-form derivatives of models.intercept: a grid on theta finds the basin of the global
minimum, a safeguarded Newton iteration polishes it, and every outcome keeps its own bracket and
stopping rule, so its result does not depend on which outcomes share its batch. Models with
several random effects per participant (a random slope) are minimised over lme4's theta by
L-BFGS-B with finite-difference gradients. Both verdicts use one rule: a minimum whose
Hessian-scaled gradient |g| / sqrt(H) is below GRADIENT_TOL (lme4's checkConv); a fit is
singular when a diagonal element of theta is below SINGULAR_TOL (lme4's isSingular).
"""

from __future__ import annotations

import copy

import numpy as np
from scipy import optimize

from pnitrial.models.intercept import (
    BatchStats,
    batch_deviance,
    batch_profile,
    criterion_derivatives,
    criterion_dof,
    lambda_derivatives,
)

__all__ = [
    "GRADIENT_TOL",
    "SINGULAR_TOL",
    "converged",
    "minimise_theta",
    "newton_batch",
    "optimise_lambda",
    "scaled_gradient",
    "singular",
    "theta_convergence",
    "trust_region_newton",
]

SINGULAR_TOL = 1e-4
GRADIENT_TOL = 2e-3
THETA_GRID = np.r_[0.0, np.geomspace(1e-3, 1e2, 11)]
NEWTON_MAX = 60
MAX_STEP = 4.0  # newton_batch's longest step in any parameter (log SDs, correlation scales)
TRUST_MAX = 100  # trust-region iterations of an MMRM fit (the real trials converge in at most 72)
# Newton stops when the step is this small relative to max(lambda, LAMBDA_FLOOR).
STEP_RTOL = 1e-12
LAMBDA_FLOOR = 1e-10


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


# -- one random intercept, any number of outcomes ---------------------------------------------


def _newton(st: BatchStats, reml: bool, lo: np.ndarray, hi: np.ndarray, lam: np.ndarray):
    """Safeguarded Newton on the criterion's derivative inside [lo, hi]; bisection when it misbehaves."""
    dof = criterion_dof(st, reml)
    active = np.ones(len(lam), dtype=bool)
    for _ in range(NEWTON_MAX):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        sub = st if len(idx) == len(lam) else st.take(idx)
        g, H = criterion_derivatives(lambda_derivatives(batch_profile(lam[idx], sub), sub, reml), dof[idx])
        x = lam[idx]
        lo_i = np.where(g < 0, x, lo[idx])  # the derivative's sign shrinks the bracket
        hi_i = np.where(g > 0, x, hi[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            cand = x - g / H
        bad = ~np.isfinite(cand) | (H <= 0) | (cand <= lo_i) | (cand >= hi_i)
        new = np.where(bad, np.where(lo_i > 0, np.sqrt(lo_i * hi_i), 0.5 * hi_i), cand)
        new = np.where(g == 0, x, new)
        done = np.abs(new - x) <= STEP_RTOL * np.maximum(x, LAMBDA_FLOOR)
        done |= hi_i - lo_i <= STEP_RTOL * np.maximum(hi_i, LAMBDA_FLOOR)
        lam[idx], lo[idx], hi[idx] = new, lo_i, hi_i
        active[idx[done]] = False
    return lam, ~active


GRID_FLOATS = 4_000_000  # statistics copied for the grid evaluation at once (32 MB)


def optimise_lambda(st: BatchStats, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Grid on theta for the basin of the global minimum, then Newton in lambda.

    The Newton iteration uses the closed-form derivatives of models.intercept (Harville 1977,
    JASA 72:320) inside the bracket of the best grid point, bisecting when a step leaves it.

    Parameters
    ----------
    st : BatchStats
        Sufficient statistics of K outcomes.
    reml : bool
        REML or maximum likelihood.

    Returns
    -------
    lam : ndarray, shape (K,)
        The minimising lambda = theta^2 of each outcome (0 on the boundary).
    ok : ndarray of bool, shape (K,)
        Whether the iteration stopped on its step or bracket tolerance.

    Examples
    --------
    >>> from pnitrial.models.intercept import batch_stats
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan
    >>> st, _ = batch_stats(X, g, Y)
    >>> lam, ok = optimise_lambda(st, reml=True)
    >>> [float(f"{v:.4g}") for v in lam], ok.tolist()
    ([3.087, 1.245], [True, True])
    """
    K = len(st.n)
    grid_l = THETA_GRID**2
    G = len(grid_l)
    # all grid points in batched calls: outcome k's copies sit at rows k*G .. k*G+G-1, in chunks of
    # outcomes whose copied statistics stay near 32 MB (many visits make S large; bits do not depend on it)
    chunk = max(1, GRID_FLOATS // (G * st.S[0].size))
    devs = (
        np.concatenate(
            [
                batch_deviance(np.tile(grid_l, len(ks)), st.take(np.repeat(ks, G)), reml).reshape(len(ks), G)
                for ks in np.array_split(np.arange(K), max(1, -(-K // chunk)))
            ]
        )
        if K
        else np.empty((0, G))
    )
    i = np.argmin(np.where(np.isfinite(devs), devs, np.inf), axis=1)
    # zero is the optimum when it is the best grid point and the criterion rises from it
    g0, _ = criterion_derivatives(lambda_derivatives(batch_profile(np.zeros(K), st), st, reml), criterion_dof(st, reml))
    boundary = (i == 0) & (g0 >= 0)
    lam = np.zeros(K)
    ok = boundary.copy()
    inner = np.flatnonzero(~boundary)
    if len(inner):
        j = i[inner]
        lo = grid_l[np.maximum(j - 1, 0)]
        hi = grid_l[np.clip(j + 1, 1, len(grid_l) - 1)]
        start = np.where(j == 0, 0.5 * grid_l[1], grid_l[j])
        lam[inner], ok[inner] = _newton(st.take(inner), reml, lo, hi, start)
    worse = batch_deviance(lam, st, reml) > devs[np.arange(K), i]  # never leave a better grid point
    return np.where(worse, grid_l[i], lam), ok & ~worse


def scaled_gradient(lam: np.ndarray, st: BatchStats, reml: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """lme4's convergence check in theta (|g| / sqrt(H)); at zero, how steeply it falls away.

    Parameters
    ----------
    lam : ndarray, shape (K,)
        lambda = theta^2 per outcome.
    st : BatchStats
        Sufficient statistics of the outcomes.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    scaled : ndarray, shape (K,)
        |g| / sqrt(|H|) in theta for lambda > 0; max(-g, 0) in lambda at lambda = 0.
    minimum : ndarray of bool, shape (K,)
        Whether the point is a minimum (H > 0 inside, a non-negative slope at zero).

    Examples
    --------
    >>> from pnitrial.models.intercept import batch_stats
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan
    >>> st, _ = batch_stats(X, g, Y)
    >>> scaled, minimum = scaled_gradient(optimise_lambda(st, True)[0], st)
    >>> (scaled < 1e-6).tolist(), minimum.tolist()
    ([True, True], [True, True])
    >>> scaled_gradient(np.zeros(2), st)[1].tolist()  # the criterion falls away from zero
    [False, False]
    """
    g, H = criterion_derivatives(lambda_derivatives(batch_profile(lam, st), st, reml), criterion_dof(st, reml))
    theta = np.sqrt(lam)
    g_t, H_t = 2 * theta * g, 2 * g + 4 * lam * H
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(lam > 0, np.abs(g_t) / np.sqrt(np.abs(H_t)), np.maximum(-g, 0.0))
    minimum = np.where(lam > 0, H_t > 0, g >= 0)
    return np.nan_to_num(scaled, nan=np.inf), minimum


# -- several random effects per participant ------------------------------------------------


def _gradient(fun, x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Central differences, forward at an active lower bound (deviance is even in theta)."""
    g = np.empty_like(x)
    for k in range(len(x)):
        h = 1e-6 * max(abs(x[k]), 1e-2)
        e = np.zeros_like(x)
        e[k] = h
        if x[k] - h < lower[k]:
            g[k] = (fun(x + e) - fun(x)) / h
        else:
            g[k] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def minimise_theta(fun, start: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, bool]:
    """L-BFGS-B over lme4's theta from three starts (Lambda = I scaled by 1, 1/2, 2); the best wins.

    L-BFGS-B: Byrd, Lu, Nocedal & Zhu 1995 (SIAM J Sci Comput 16:1190), with central-difference
    gradients (forward at an active lower bound).

    Parameters
    ----------
    fun : callable
        The criterion, a scalar function of theta.
    start : ndarray
        Starting theta (lme4's: Lambda = I).
    lower : ndarray
        Lower bounds (0 for diagonal elements of Lambda, -inf for the others).

    Returns
    -------
    theta : ndarray
        The best of the three optima.
    success : bool
        scipy's convergence flag of that optimum.

    Examples
    --------
    >>> f = lambda x: (x[0] - 1.0) ** 2 + 3.0 * (x[1] + 0.5) ** 2 + 2.0
    >>> theta, ok = minimise_theta(f, np.array([1.0, 1.0]), np.array([0.0, -np.inf]))
    >>> [float(f"{v:.4g}") for v in theta], ok
    ([1.0, -0.5], True)
    >>> theta, ok = minimise_theta(f, np.array([1.0, 1.0]), np.array([0.0, 0.0]))  # optimum on a bound
    >>> [float(f"{v:.4g}") for v in theta]
    [1.0, 0.0]
    """
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    best = None
    for x0 in (start, start * 0.5, start * 2.0):
        res = optimize.minimize(
            fun,
            x0,
            jac=lambda x: _gradient(fun, x, lower),
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
        )
        if best is None or res.fun < best.fun:
            best = res
    return np.asarray(best.x, dtype=float), bool(best.success)


def theta_convergence(fun, theta: np.ndarray, lower: np.ndarray) -> tuple[float, bool]:
    """lme4's check by finite differences: Hessian-scaled gradient over the interior parameters.

    Parameters at their lower bound are left out; with none inside, the check is that the
    criterion does not fall away from the bounds.

    Parameters
    ----------
    fun : callable
        The criterion, a scalar function of theta.
    theta : ndarray
        The candidate optimum.
    lower : ndarray
        Lower bounds of theta.

    Returns
    -------
    gmax : float
        Largest |L^-1 g| with H = L L' the finite-difference Hessian of the interior parameters.
    converged : bool
        Whether gmax is below `GRADIENT_TOL` (and H is positive definite).

    Examples
    --------
    >>> f = lambda x: (x[0] - 1.0) ** 2 + 3.0 * (x[1] + 0.5) ** 2 + 2.0
    >>> gmax, ok = theta_convergence(f, np.array([1.0, -0.5]), np.array([0.0, -np.inf]))
    >>> round(gmax, 6), ok
    (0.0, True)
    >>> gmax, ok = theta_convergence(f, np.array([1.2, -0.5]), np.array([0.0, -np.inf]))
    >>> round(gmax, 4), ok
    (0.2828, False)
    """
    free = ~(theta <= lower + SINGULAR_TOL * 1e-3)
    if not free.any():
        g = _gradient(fun, theta, lower)
        return float(np.max(np.abs(np.minimum(g, 0.0)))), bool(np.all(g >= -1e-6))
    g = _gradient(fun, theta, lower)[free]
    idx = np.flatnonzero(free)
    k = len(idx)
    H = np.empty((k, k))
    for a in range(k):
        e = np.zeros_like(theta)
        e[idx[a]] = 1e-4 * max(abs(theta[idx[a]]), 1e-2)
        H[a] = (_gradient(fun, theta + e, lower)[free] - _gradient(fun, theta - e, lower)[free]) / (2 * e[idx[a]])
    H = (H + H.T) / 2
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(H), g)
    except np.linalg.LinAlgError:
        return float(np.max(np.abs(g))), False
    gmax = float(np.max(np.abs(scaled)))
    return gmax, bool(converged(gmax, True))


# -- a covariance over visits (MMRM): exact gradient and Hessian ----------------------------------


def trust_region_newton(theta: np.ndarray, pieces, quasi_newton: bool = False):
    """Trust-region Newton on the exact gradient and Hessian (Conn, Gould & Toint 2000), which, unlike
    a line search, leaves saddle points along negative curvature; then Newton steps to full precision.
    With quasi_newton, L-BFGS-B (mmrm's optimiser) first crosses the flat regions of many-parameter
    structures. `pieces(theta, order)` returns the criterion (order 0), its gradient (1) and Hessian (2)
    as attributes `criterion`, `gradient`, `hessian`; returns (theta, pieces at theta, converged).

    Parameters
    ----------
    theta : ndarray
        Starting point.
    pieces : callable
        pieces(theta, order) -> object with `criterion`, `gradient` (order >= 1, else None) and
        `hessian` (order 2, else None); a non-finite criterion marks an infeasible point.
    quasi_newton : bool
        Run L-BFGS-B on the exact gradient first.

    Returns
    -------
    theta : ndarray
        The optimum.
    pieces : object
        pieces(theta, 2) at the optimum.
    converged : bool
        scipy's success flag, or a gradient norm below 1e-6.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> def rosenbrock(th, order):
    ...     a, b = th
    ...     grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
    ...     hess = np.array([[2 - 400 * b + 1200 * a * a, -400 * a], [-400 * a, 200.0]])
    ...     return SimpleNamespace(criterion=(1 - a) ** 2 + 100 * (b - a * a) ** 2,
    ...                            gradient=grad if order >= 1 else None, hessian=hess if order == 2 else None)
    >>> theta, at, ok = trust_region_newton(np.array([-1.2, 1.0]), rosenbrock)
    >>> theta.round(6).tolist(), ok, round(float(at.criterion), 12)
    ([1.0, 1.0], True, 0.0)
    """
    cache: dict = {}

    def at(th: np.ndarray, order: int):
        key = th.tobytes()
        if key not in cache or (cache[key].hessian is None and order == 2):
            cache.clear()
            cache[key] = pieces(th, 2)
        return cache[key]

    def fun(th):
        c = at(th, 2).criterion
        return c if np.isfinite(c) else 1e300

    def value_and_gradient(th):
        c = pieces(th, 1)
        return (c.criterion, c.gradient) if np.isfinite(c.criterion) else (1e300, np.zeros_like(th))

    if quasi_newton:
        first = optimize.minimize(
            value_and_gradient,
            theta,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-8},
        )
        if np.isfinite(pieces(first.x, 0).criterion):
            theta = np.asarray(first.x, dtype=float)
    res = optimize.minimize(
        fun,
        theta,
        jac=lambda th: at(th, 2).gradient if np.isfinite(at(th, 2).criterion) else np.zeros_like(th),
        hess=lambda th: at(th, 2).hessian if np.isfinite(at(th, 2).criterion) else np.eye(len(th)),
        method="trust-exact",
        options={"gtol": 1e-9, "maxiter": TRUST_MAX},
    )
    theta = np.asarray(res.x, dtype=float)
    cur = pieces(theta, 2)
    for _ in range(5):  # polish: trust-exact stops on the gradient norm, Newton doubles the digits
        if cur.hessian is None or np.linalg.eigvalsh(cur.hessian).min() <= 0:
            break
        step = np.linalg.solve(cur.hessian, cur.gradient)
        new = pieces(theta - step, 2)
        if not (np.isfinite(new.criterion) and new.criterion <= cur.criterion + 1e-9 * abs(cur.criterion)):
            break
        theta, cur = theta - step, new
        if np.max(np.abs(step)) < 1e-12 * max(1.0, np.max(np.abs(theta))):
            break
    if cur.gradient is None:
        return theta, cur, False
    return theta, cur, bool(res.success or np.linalg.norm(cur.gradient) < 1e-6)


def newton(theta: np.ndarray, pieces, max_iter: int = 12):
    """Plain Newton steps on the exact gradient and Hessian, for a start already near the optimum.

    Used to refit nearly the same data (jackknife replicates) from the full data's optimum, where
    it converges quadratically in a few steps. It gives up, and says so, at a Hessian that is not
    positive definite or a step that does not lower the criterion; the caller then runs the full
    optimiser (`trust_region_newton`).

    Parameters
    ----------
    theta : ndarray
        Starting point.
    pieces : callable
        As for `trust_region_newton`.
    max_iter : int, optional
        Newton steps at the most.

    Returns
    -------
    theta : ndarray
    pieces : object
        pieces(theta, 2) at the last point.
    converged : bool
        Whether the last step was below 1e-10 of the parameters' scale.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> def bowl(th, order):
    ...     return SimpleNamespace(criterion=float(th @ th + th[0] ** 4), gradient=2 * th + [4 * th[0] ** 3, 0],
    ...                            hessian=np.diag([2 + 12 * th[0] ** 2, 2.0]))
    >>> theta, at, ok = newton(np.array([0.3, -0.2]), bowl)
    >>> bool(np.abs(theta).max() < 1e-12), ok
    (True, True)
    """
    cur = pieces(theta, 2)
    for _ in range(max_iter):
        if cur.hessian is None or not np.isfinite(cur.criterion):
            return theta, cur, False
        try:
            L = np.linalg.cholesky(cur.hessian)
        except np.linalg.LinAlgError:
            return theta, cur, False
        step = np.linalg.solve(L.T, np.linalg.solve(L, cur.gradient))
        new = pieces(theta - step, 2)
        if not (np.isfinite(new.criterion) and new.criterion <= cur.criterion + 1e-9 * abs(cur.criterion)):
            return theta, cur, False
        theta, cur = theta - step, new
        if np.max(np.abs(step)) < 1e-10 * max(1.0, float(np.max(np.abs(theta)))):
            return theta, cur, True
    return theta, cur, False


def newton_batch(theta: np.ndarray, pieces, max_iter: int = 60, halvings: int = 30):
    """Damped Newton for A independent problems at once, each with its own steps and stopping rule.

    The panel form of `newton` (Nocedal & Wright 2006, sec. 3.4): each problem steps along
    -H^-1 g, with H shifted to positive definite where it is not (modified Newton), halving the
    step until the criterion does not rise; it stops when its step falls below 1e-10 of its
    parameters' scale (or 1e-5 for a full step on a positive-definite Hessian, whose error is then
    of the order of its square). A problem whose step cannot lower the criterion, or which has not stopped
    after `max_iter` steps, is reported as not converged so that the caller can hand it to the
    full single-problem optimiser (`trust_region_newton`). Problems never interact, so each
    result is the same whichever problems share the batch.

    Parameters
    ----------
    theta : ndarray, shape (A, K)
        Starting points.
    pieces : callable
        pieces(theta_sub, index, order) -> object with `criterion` (a,), `gradient` (a, K) and
        `hessian` (a, K, K) arrays for the problems `index` at theta_sub; an infinite criterion
        marks an infeasible point.
    max_iter : int, optional
        Newton steps at the most.
    halvings : int, optional
        Step halvings at the most before a problem is given up.

    Returns
    -------
    theta : ndarray, shape (A, K)
        The last accepted points.
    at : list
        pieces at each problem's last point (order 2), one per problem: the object returned by
        `pieces` with its index within that call.
    converged : ndarray of bool, shape (A,)

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> def bowls(th, index, order):  # problem a: (x - a)^2 + x^4 / 4 in each coordinate
    ...     c = np.asarray(index, dtype=float)[:, None]
    ...     return SimpleNamespace(criterion=((th - c) ** 2 + th**4 / 4).sum(axis=1),
    ...                            gradient=2 * (th - c) + th**3,
    ...                            hessian=np.eye(th.shape[1]) * (2 + 3 * th**2)[:, :, None])
    >>> theta, at, ok = newton_batch(np.zeros((3, 2)), bowls)
    >>> theta[:, 0].round(6).tolist(), ok.tolist()
    ([0.0, 0.770917, 1.179509], [True, True, True])
    """
    theta = np.array(theta, dtype=float)
    A, K = theta.shape
    at: list = [None] * A
    converged = np.zeros(A, dtype=bool)
    active = np.arange(A)
    cur = pieces(theta, active, 2)
    for a in range(A):
        at[a] = (cur, a)
    live = np.isfinite(cur.criterion)
    active = active[live]
    crit = np.where(live, cur.criterion, np.inf)
    grad, hess = cur.gradient[live], cur.hessian[live]
    for _ in range(max_iter):
        if not len(active):
            break
        step, pd = _modified_newton_step(grad, hess)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(np.abs(step).max(axis=1, initial=0.0), 1e-300))[:, None]
        alpha = np.ones(len(active))
        moved = np.zeros(len(active), dtype=bool)
        pending = np.isfinite(step).all(axis=1)
        full = pieces(theta[active] - step, active, 2)  # the full step, with its derivatives: usually taken
        for h in range(halvings):
            if not pending.any():
                break
            idx = np.flatnonzero(pending)
            if h == 0:
                c = full.criterion[idx]
            else:
                c = pieces(theta[active[idx]] - alpha[idx, None] * step[idx], active[idx], 0).criterion
            ok = np.isfinite(c) & (c <= crit[active[idx]] + 1e-9 * np.abs(crit[active[idx]]))
            moved[idx[ok]] = True
            pending[idx[ok]] = False
            alpha[idx[~ok]] /= 2
        done = alpha[:, None] * step
        if not moved.any():
            break
        keep = np.flatnonzero(moved)  # problems whose step could not lower the criterion stop here
        theta[active[keep]] -= done[keep]
        damped = keep[alpha[keep] < 1]
        if len(damped) == 0:
            new = _take(full, keep)
        else:
            new = pieces(theta[active[keep]], active[keep], 2)
        for j, a in enumerate(active[keep]):
            at[a] = (new, j)
        crit[active[keep]] = new.criterion
        scale = np.maximum(1.0, np.abs(theta[active[keep]]).max(axis=1))
        size = np.abs(done[keep]).max(axis=1)
        # a full Newton step on a positive-definite Hessian below 1e-5 leaves an error of its square
        small = (size < 1e-10 * scale) | ((size < 1e-5 * scale) & pd[keep] & (alpha[keep] == 1))
        finite = np.isfinite(new.criterion)
        converged[active[keep][small & finite]] = True
        go = ~small & finite
        active = active[keep][go]
        grad, hess = new.gradient[go], new.hessian[go]
    return theta, at, converged


def _take(pieces, index: np.ndarray):
    """The batch pieces of the problems at positions `index` (criterion, gradient, hessian and any other arrays)."""
    out = copy.copy(pieces)
    for name, value in vars(pieces).items():
        if isinstance(value, np.ndarray) and value.ndim:
            setattr(out, name, value[index])
    return out


def _modified_newton_step(g: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H^-1 g per problem, with H shifted by (|lambda_min| + 1e-8 scale) I where it is not positive
    definite; and which Hessians were positive definite (no shift)."""
    vals, vecs = np.linalg.eigh(H)
    scale = np.maximum(np.abs(vals).max(axis=1, initial=0.0), 1e-12)
    shift = np.where(vals[:, 0] > 1e-12 * scale, 0.0, np.abs(vals[:, 0]) + 1e-8 * scale)
    coef = np.einsum("akj,ak->aj", vecs, g) / (vals + shift[:, None])
    return np.einsum("akj,aj->ak", vecs, coef), shift == 0
