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

__all__ = ["toy_trial"]


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
