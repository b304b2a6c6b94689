"""The typed description of a validated trial that every stage after ingest reads.

`build_long_frame` makes a `Trial` from the codebook and the table; it travels between jobs as
`meta.json` and is read back into the same object, so no analysis looks a name up in a dict.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pnitrial.data.codebook import ROLES, TRIAL_ROLES, Outcome

__all__ = ["Trial"]


@dataclass(frozen=True)
class Trial:
    """Arms, visits, covariates and outcomes of one validated trial (meta.json).

    Parameters
    ----------
    name : str
        Name of the dataset.
    arms : dict
        Arm label of each role (``'intervention'``, ``'control'``, ``'healthy'``); healthy is None
        without a healthy group.
    visits : tuple of str
        Visit labels in time order; the first is baseline.
    visit_times : dict of str to float, optional
        Numeric time of each visit.
    covariates : dict, optional
        Kind of each covariate: ``{'type': 'numeric'}`` or ``{'type': 'categorical', 'levels': [...]}``.
    outcomes : tuple of Outcome, optional
        The outcomes, in codebook order.
    lod_method : str, optional
        How below-LOD values were substituted (config lod.method).
    participants : dict of str to int, optional
        Number of participants per role.
    enrolled : int, optional
        Patients assessed for eligibility (codebook ``enrolled``); None when the codebook does not say.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "IL6", "IL-6", "pg/mL", "biomarker", "log")
    >>> t = Trial("demo", {"intervention": "MBPM", "control": "Wait-list", "healthy": None},
    ...           ("pre", "post"), outcomes=(il6,))
    >>> t.baseline, t.outcome("il6").label, t.trial_arms
    ('pre', 'IL-6', ['MBPM', 'Wait-list'])
    >>> Trial.from_json(t.to_json()) == t
    True
    """

    name: str
    arms: dict[str, str | None]  # role -> label, healthy None without a healthy group
    visits: tuple[str, ...]
    visit_times: dict[str, float] = field(default_factory=dict)
    covariates: dict[str, dict] = field(default_factory=dict)  # name -> {"type": "numeric" | "categorical", ...}
    outcomes: tuple[Outcome, ...] = ()
    lod_method: str = "sqrt2"
    participants: dict[str, int] = field(default_factory=dict)  # per role
    enrolled: int | None = None  # assessed for eligibility (CONSORT enrolment), when the codebook says

    @property
    def baseline(self) -> str:
        return self.visits[0]

    @property
    def later_visits(self) -> tuple[str, ...]:
        return self.visits[1:]

    @property
    def trial_arms(self) -> list[str]:
        """Labels of the randomised arms, intervention first."""
        return [self.arms[r] for r in TRIAL_ROLES]

    @property
    def has_healthy(self) -> bool:
        return self.arms.get("healthy") is not None and self.participants.get("healthy", 0) > 0

    def outcome(self, key: str) -> Outcome:
        """The outcome with this key (KeyError if the codebook has none)."""
        for o in self.outcomes:
            if o.key == key:
                return o
        raise KeyError(key)

    def family(self, family: str) -> list[Outcome]:
        """The outcomes of one family, in codebook order."""
        return [o for o in self.outcomes if o.family == family]

    def with_outcomes(self, outcomes: tuple[Outcome, ...]) -> Trial:
        return replace(self, outcomes=tuple(outcomes))

    def to_json(self) -> str:
        """meta.json's text: sorted keys, so the file is byte-identical for the same trial."""
        d = asdict(self)
        d["visits"] = list(self.visits)
        d["outcomes"] = [asdict(o) for o in self.outcomes]
        if self.enrolled is None:  # absent rather than null: meta.json of a trial without it is unchanged
            del d["enrolled"]
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Trial:
        d = json.loads(text)
        outcomes = tuple(
            Outcome(**dict(o, range=tuple(o["range"]) if o.get("range") is not None else None)) for o in d["outcomes"]
        )
        return cls(
            name=d["name"],
            arms={r: d["arms"].get(r) for r in ROLES},
            visits=tuple(d["visits"]),
            visit_times=d.get("visit_times", {}),
            covariates=d.get("covariates", {}),
            outcomes=outcomes,
            lod_method=d.get("lod_method", "sqrt2"),
            participants=d.get("participants", {}),
            enrolled=d.get("enrolled"),
        )

    @classmethod
    def read(cls, path: str | Path) -> Trial:
        return cls.from_json(Path(path).read_text())
