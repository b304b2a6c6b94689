"""The dataset codebook: one YAML file that describes a trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .errors import ValidationError


@dataclass(frozen=True)
class Outcome:
    key: str
    column: str
    label: str
    unit: str
    family: str
    transform: str
    lod: float | None = None
    range: tuple[float, float] | None = None

    @property
    def is_log(self) -> bool:
        return self.transform == "log"


@dataclass(frozen=True)
class Panel:
    """A wide table of many analytes, analysed in batches."""

    table: Path
    label: str
    unit: str
    family: str
    transform: str
    analytes: tuple[str, ...] | None = None  # None: every column but participant and visit


@dataclass(frozen=True)
class Codebook:
    path: Path
    table: Path
    name: str
    participant: str
    arm: str
    visit: str
    intervention: str
    control: str
    healthy: str | None
    visits: tuple[str, ...]
    covariates: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    visit_times: dict[str, float] = field(default_factory=dict)
    panel: Panel | None = None

    @property
    def baseline(self) -> str:
        return self.visits[0]

    def outcome(self, key: str) -> Outcome:
        for o in self.outcomes:
            if o.key == key:
                return o
        raise KeyError(key)


def schema() -> dict:
    text = resources.files("pnitrial").joinpath("schemas/dataset.schema.yaml").read_text()
    return yaml.safe_load(text)


def _schema_problem(path: Path, err: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    return f"{path}: key '{where}': {err.message}"


def load_codebook(path: str | Path) -> Codebook:
    """Read and validate a codebook; every problem is reported with its key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValidationError([f"{path}: codebook file not found"]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([f"{path}: not valid YAML: {exc}"]) from None
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ValidationError([_schema_problem(path, e) for e in errors])
    problems = []
    arms = raw["arms"]
    if len(set(arms.values())) != len(arms):
        problems.append(f"{path}: key 'arms': labels must differ, got {sorted(arms.values())}")
    times = raw.get("visit_times", {})
    if times and set(times) != set(raw["visits"]):
        problems.append(f"{path}: key 'visit_times': must give a time for exactly the visits {raw['visits']}")
    outcomes = []
    for key, spec in raw["outcomes"].items():
        rng = spec.get("range")
        if rng is not None and not rng[0] < rng[1]:
            problems.append(f"{path}: key 'outcomes/{key}/range': lower bound must be below upper, got {rng}")
        if spec["transform"] == "log" and rng is not None and rng[0] < 0:
            problems.append(f"{path}: key 'outcomes/{key}': log transform needs a non-negative range")
        outcomes.append(
            Outcome(
                key=key,
                column=spec.get("column", key),
                label=spec["label"],
                unit=spec["unit"],
                family=spec["family"],
                transform=spec["transform"],
                lod=spec.get("lod"),
                range=tuple(rng) if rng is not None else None,
            )
        )
    cols = raw["columns"]
    ident = [cols["participant"], cols["arm"], cols["visit"]]
    used = ident + list(raw.get("covariates", [])) + [o.column for o in outcomes]
    dup = sorted({c for c in used if used.count(c) > 1})
    if dup:
        problems.append(f"{path}: columns used twice (identifier, covariate or outcome): {dup}")
    panel = None
    if "panel" in raw:
        spec = raw["panel"]
        panel = Panel(
            table=path.parent / spec["table"],
            label=spec.get("label", "Panel"),
            unit=spec.get("unit", ""),
            family=spec["family"],
            transform=spec["transform"],
            analytes=tuple(spec["analytes"]) if "analytes" in spec else None,
        )
        clash = sorted(set(panel.analytes or ()) & {o.key for o in outcomes})
        if clash:
            problems.append(f"{path}: key 'panel/analytes': names also used as outcome keys: {clash}")
    if problems:
        raise ValidationError(problems)
    return Codebook(
        path=path,
        table=(path.parent / raw["table"]),
        name=raw.get("name", path.stem),
        participant=cols["participant"],
        arm=cols["arm"],
        visit=cols["visit"],
        intervention=arms["intervention"],
        control=arms["control"],
        healthy=arms.get("healthy"),
        visits=tuple(raw["visits"]),
        covariates=tuple(raw.get("covariates", [])),
        outcomes=tuple(outcomes),
        visit_times=dict(times),
        panel=panel,
    )
