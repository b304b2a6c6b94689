"""A small simulated trial in the validated long-frame form, for examples and quick checks.

The analyses take the frame that data.longframe.build_long_frame returns (one row per participant,
visit and outcome) with its Trial; `toy_trial` makes one without a codebook, as statsmodels and
pingouin ship small datasets for their examples. No participant data is involved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Outcome
from pnitrial.data.trial import Trial

__all__ = ["toy_trial", "visit_grid"]


def toy_trial(
    n: int = 24,
    visits: tuple[str, ...] = ("pre", "post"),
    effect: float = -2.0,
    sd: tuple[float, ...] | None = None,
    seed: int = 2,
) -> tuple[pd.DataFrame, Trial]:
    """A two-arm trial of one clinical outcome (`pain`), participants alternating between the arms.

    pain = 20 + u_i + e_iv sd_v + effect after baseline in the intervention arm, u and e standard
    normal (participant effects first, then residuals, from one generator).

    Parameters
    ----------
    n : int
        Participants (even: half per arm).
    visits : tuple of str
        Visit labels, baseline first.
    effect : float
        Intervention effect at every later visit.
    sd : tuple of float, optional
        Residual standard deviation at each visit (1 at every visit by default).
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    frame : DataFrame
        The long frame (pid, role, visit, visit_index, outcome, value, censored, lod).
    trial : Trial
        Arms MBPM (intervention) and Wait-list (control), no healthy group.

    Examples
    --------
    >>> frame, trial = toy_trial()
    >>> len(frame), trial.visits, trial.outcomes[0].key
    (48, ('pre', 'post'), 'pain')
    """
    T = len(visits)
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n), T)
    index = np.tile(np.arange(T), n)
    role = np.where(pid % 2 == 0, "intervention", "control")
    treated = (role == "intervention") & (index > 0)
    scale = np.ones(T) if sd is None else np.asarray(sd, dtype=float)
    value = 20 + rng.normal(size=n)[pid] + rng.normal(size=T * n) * scale[index] + effect * treated
    frame = pd.DataFrame(
        {
            "pid": pid,
            "role": role,
            "visit": np.asarray(visits)[index],
            "visit_index": index,
            "outcome": "pain",
            "value": value,
            "censored": 0,
            "lod": np.nan,
        }
    )
    pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    trial = Trial(
        "toy", {"intervention": "MBPM", "control": "Wait-list", "healthy": None}, tuple(visits), outcomes=(pain,)
    )
    return frame, trial


def visit_grid(m: int, T: int) -> tuple[pd.DataFrame, Trial]:
    """The participant x visit rows of a panel (analyses.panel), participants alternating between arms.

    Parameters
    ----------
    m : int
        Participants, numbered 1 .. m; even numbers are in the intervention arm.
    T : int
        Visits, labelled v0 (baseline) .. v{T-1}.

    Returns
    -------
    rows : DataFrame
        pid, role, visit and visit_index, by participant then visit.
    trial : Trial
        Arms MBPM (intervention) and WL (control), no healthy group, no outcomes.

    Examples
    --------
    >>> rows, trial = visit_grid(4, 3)
    >>> rows.shape, trial.visits, rows["role"].iloc[:4].tolist()
    ((12, 4), ('v0', 'v1', 'v2'), ['control', 'control', 'control', 'intervention'])
    """
    visits = tuple(f"v{k}" for k in range(T))
    trial = Trial("sim", {"intervention": "MBPM", "control": "WL", "healthy": None}, visits)
    pid = np.repeat(np.arange(1, m + 1), T)
    vi = np.tile(np.arange(T), m)
    role = np.where(pid % 2 == 0, "intervention", "control")
    return pd.DataFrame({"pid": pid, "role": role, "visit": np.array(visits)[vi], "visit_index": vi}), trial
