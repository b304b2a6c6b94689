"""A failed analysis is a row, never a crash: one place that turns an exception into a status.

Every analysis step runs each outcome (or pair, or figure) through ``attempt``: a failure for one
unit is logged with its traceback to the rule's log and returned as ``failed: <reason>``, and every
other unit and table still finishes. Only validation stops a run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

log = logging.getLogger("pnitrial")
T = TypeVar("T")
OK = ("ok", "singular")  # fit statuses whose numbers are reported with a p-value
MAX_REASON = 200
# a residual variance below this share of the total is rounding noise: the outcome does not vary
# within participants (e.g. every later value copies the baseline), and no test on it means anything
RESIDUAL_SHARE_FLOOR = 1e-8
DEGENERATE = "degenerate: no residual variance (the outcome does not vary within participants)"


def fit_status(converged, singular, var_residual, var_participant):
    """The one rule for a mixed-model fit's status: not converged, degenerate, singular or ok.

    Parameters
    ----------
    converged, singular : bool or array_like of bool
        Whether the optimiser converged, and whether a variance component is on its boundary.
    var_residual, var_participant : float or array_like
        Residual and between-participant variance; a residual share of the total below
        ``RESIDUAL_SHARE_FLOOR`` makes the fit degenerate (the outcome does not vary within participants).

    Returns
    -------
    str or ndarray of object
        ``'not converged'``, ``DEGENERATE``, ``'singular'`` or ``'ok'``: a str for scalar inputs,
        an object array of them for arrays.

    Examples
    --------
    >>> fit_status(True, False, 1.0, 2.0)
    'ok'
    >>> fit_status(True, False, 1e-12, 2.0)
    'degenerate: no residual variance (the outcome does not vary within participants)'
    >>> fit_status([True, False], [True, False], [1.0, 1.0], [0.0, 2.0]).tolist()
    ['singular', 'not converged']
    """
    share = np.asarray(var_residual, dtype=float) / (
        np.asarray(var_residual, dtype=float) + np.asarray(var_participant, dtype=float)
    )
    out = np.where(
        ~np.asarray(converged, dtype=bool),
        "not converged",
        np.where(
            ~(share > RESIDUAL_SHARE_FLOOR), DEGENERATE, np.where(np.asarray(singular, dtype=bool), "singular", "ok")
        ),
    )
    return out.item() if out.ndim == 0 else out.astype(object)


def failure_status(exc: BaseException) -> str:
    """The status of a failed analysis: ``'failed: <reason>'``, on one line and at most MAX_REASON characters.

    Parameters
    ----------
    exc : BaseException
        The exception the analysis raised; its message is the reason (its type's name when empty).

    Returns
    -------
    str
        ``'failed: '`` followed by the message with whitespace collapsed, shortened with ``...``.

    Examples
    --------
    >>> failure_status(ValueError("design is rank deficient"))
    'failed: design is rank deficient'
    >>> failure_status(ZeroDivisionError())
    'failed: ZeroDivisionError'
    """
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    return f"failed: {reason}"


def attempt(what: str, fn: Callable[..., T], *args, **kwargs) -> tuple[T | None, str | None]:
    """Run one unit of analysis; a failure becomes a status instead of an exception.

    Parameters
    ----------
    what : str
        Names the unit (an outcome, a pair, a figure) in the log message of a failure.
    fn : callable
        The analysis; called as ``fn(*args, **kwargs)``.
    *args, **kwargs
        Passed on to `fn`.

    Returns
    -------
    result : object or None
        What `fn` returned, or None when it raised.
    status : str or None
        None on success, else ``'failed: <reason>'`` (see `failure_status`); the traceback is
        logged as a warning under `what`.

    Examples
    --------
    >>> attempt("outcome il6", int, "42")
    (42, None)
    >>> attempt("outcome il6", int, "forty-two")
    (None, "failed: invalid literal for int() with base 10: 'forty-two'")
    """
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - one unit's failure must not stop the others
        log.warning("%s: %s", what, failure_status(exc), exc_info=True)
        return None, failure_status(exc)


def is_ok(status: object) -> bool:
    """Whether a fit status stands for numbers that may be tested and adjusted.

    Parameters
    ----------
    status : object
        A fit status as written to the tables (NaN where there is none).

    Returns
    -------
    bool
        True for ``'ok'`` and ``'singular'`` (see ``OK``), False otherwise.

    Examples
    --------
    >>> is_ok("ok"), is_ok("singular"), is_ok("not converged"), is_ok(float("nan"))
    (True, True, False, False)
    """
    return isinstance(status, str) and status in OK


def log_to(path: str | Path) -> None:
    r"""Log to the rule's log file and to stderr (so a validation message reaches the user).

    Replaces any handlers of the ``pnitrial`` logger and sets its level to INFO.

    Parameters
    ----------
    path : str or Path
        The log file; it is overwritten.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     log_to(Path(tmp) / "rule.log")
    ...     log.info("fitted 3 outcomes")
    ...     for h in log.handlers:
    ...         h.close()
    ...     log.handlers.clear()
    ...     text = (Path(tmp) / "rule.log").read_text()
    >>> text
    'INFO fitted 3 outcomes\n'
    """
    fmt = logging.Formatter("%(levelname)s %(message)s")
    log.handlers.clear()
    # Python warnings (matplotlib's layout warnings, numpy's) go to the rule's log as well
    logging.captureWarnings(True)
    py_warnings = logging.getLogger("py.warnings")
    py_warnings.handlers.clear()
    for h in (logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)):
        h.setFormatter(fmt)
        log.addHandler(h)
        py_warnings.addHandler(h)
    py_warnings.propagate = False
    log.setLevel(logging.INFO)
