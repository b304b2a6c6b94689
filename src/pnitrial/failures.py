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
    """The one rule for a mixed-model fit's status: not converged, degenerate, singular or ok (arrays too).

    Examples
    --------
    >>> fit_status(True, False, 1.0, 2.0)
    'ok'
    >>> fit_status(True, False, 1e-12, 2.0)
    'degenerate: no residual variance (the outcome does not vary within participants)'
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
    """'failed: <reason>' with the reason on one line and at most MAX_REASON characters.

    Examples
    --------
    >>> failure_status(ValueError("design is rank deficient"))
    'failed: design is rank deficient'
    """
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    return f"failed: {reason}"


def attempt(what: str, fn: Callable[..., T], *args, **kwargs) -> tuple[T | None, str | None]:
    """(fn(*args, **kwargs), None), or (None, 'failed: ...') with the traceback logged under `what`."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - one unit's failure must not stop the others
        log.warning("%s: %s", what, failure_status(exc), exc_info=True)
        return None, failure_status(exc)


def is_ok(status: object) -> bool:
    """Whether a fit status stands for numbers that may be tested and adjusted."""
    return isinstance(status, str) and status in OK


def log_to(path: str | Path) -> None:
    """Log to the rule's log file and to stderr (so a validation message reaches the user)."""
    fmt = logging.Formatter("%(levelname)s %(message)s")
    log.handlers.clear()
    for h in (logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)):
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)
