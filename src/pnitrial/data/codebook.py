"""The dataset codebook: one YAML file that describes a trial."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import yaml

from pnitrial.errors import ValidationError

ROLES = ("intervention", "control", "healthy")  # the arms a codebook can name, in table order
TRIAL_ROLES = ROLES[:2]  # the randomised arms


@dataclass(frozen=True)
class Outcome:
    """One outcome of a trial table, as the codebook declares it.

    Parameters
    ----------
    key : str
        The outcome's name in results (its key under the codebook's ``outcomes``).
    column : str
        The column of the trial table that holds it (the key unless the codebook gives ``column``).
    label, unit : str
        Label and unit of the raw values, for tables and figures.
    family : str
        Multiplicity family: p-values are FDR-adjusted within it (e.g. ``'biomarker'``, ``'clinical'``).
    transform : {'none', 'log'}
        Scale of the model; a log outcome is fitted on the log scale and reported as ratios.
    lod : float, optional
        Assay limit of detection (raw units); enables below-LOD markers such as ``<0.05``.
    range : tuple of float, optional
        Inclusive bounds of an instrument's score; values outside are refused.
    better : {'lower', 'higher'}, optional
        Which direction is improvement; figures then say which arm a result favours.

    Examples
    --------
    >>> crp = Outcome("crp", "CRP_mgL", "C-reactive protein", "mg/L", "biomarker", "log", lod=0.1)
    >>> crp.is_log, crp.column, crp.range
    (True, 'CRP_mgL', None)
    """

    key: str
    column: str
    label: str
    unit: str
    family: str
    transform: str
    lod: float | None = None
    range: tuple[float, float] | None = None
    better: str | None = None

    @property
    def is_log(self) -> bool:
        return self.transform == "log"

    @property
    def scale_name(self) -> str:
        """ "log" or "raw": the scale the models work on."""
        return "log" if self.is_log else "raw"

    def model_scale(self, values):
        """Values on the model's scale: log for a log outcome, unchanged otherwise.

        Examples
        --------
        >>> import numpy as np
        >>> il6 = Outcome("il6", "IL6", "IL-6", "pg/mL", "biomarker", "log")
        >>> il6.model_scale(np.array([1.0, np.e])).tolist(), il6.scale_name
        ([0.0, 1.0], 'log')
        """
        return np.log(values) if self.is_log else values


@dataclass(frozen=True)
class Panel:
    """A wide table of many analytes, analysed in batches.

    Parameters
    ----------
    table : Path
        The panel CSV (one row per participant x visit, one column per analyte).
    label, unit : str
        Name of the panel and unit of its values, for figures and the report.
    family : str
        Multiplicity family of every analyte (FDR across the panel).
    transform : {'none', 'log'}
        Scale of the model: ``'none'`` for NPX (already log2), ``'log'`` for concentrations.
    analytes : tuple of str, optional
        The analyte columns; None means every column but participant, visit, the columns repeated
        from the trial table and `ignore`.
    ignore : tuple of str, optional
        Non-analyte columns (plate IDs, QC flags) that are skipped.

    Examples
    --------
    >>> from pathlib import Path
    >>> p = Panel(Path("panel.csv"), "Inflammation panel", "NPX", "protein", "none", ignore=("plate",))
    >>> p.analytes is None, p.ignore
    (True, ('plate',))
    """

    table: Path
    label: str
    unit: str
    family: str
    transform: str
    analytes: tuple[str, ...] | None = None  # None: every column but participant, visit, trial columns and ignore
    ignore: tuple[str, ...] = ()  # non-analyte columns (plate IDs, QC flags), skipped


@dataclass(frozen=True)
class IceSpec:
    """Where a codebook's intercurrent-event table is and which of its columns hold what.

    Examples
    --------
    >>> IceSpec(Path("ice.csv"), "id", "visit", "strategy").table.name
    'ice.csv'
    """

    table: Path
    participant: str
    visit: str
    strategy: str


@dataclass(frozen=True)
class Codebook:
    """A validated dataset codebook: where the trial table is and what its columns mean.

    Made by `load_codebook`; paths are resolved relative to the codebook file.

    Parameters
    ----------
    path : Path
        The codebook file.
    table : Path
        The long trial table (one row per participant x visit).
    name : str
        Human-readable name of the dataset (default the codebook's file stem).
    participant, arm, visit : str
        Names of the identifying columns of the table.
    intervention, control : str
        Labels of the randomised arms in the arm column.
    healthy : str or None
        Label of the healthy-control group, None without one.
    visits : tuple of str
        Visit labels in time order; the first is baseline.
    covariates : tuple of str
        Baseline covariate columns.
    outcomes : tuple of Outcome
        The outcomes; empty when the codebook has only a panel.
    visit_times : dict of str to float, optional
        Numeric time of each visit (needed for random slopes).
    panel : Panel, optional
        A panel of many analytes in a wide table.
    enrolled : int, optional
        Patients assessed for eligibility (codebook key ``enrolled``), None when not given.
    ice : IceSpec, optional
        The intercurrent-event table (codebook key ``ice``), None when not given.

    Examples
    --------
    >>> from pathlib import Path
    >>> crp = Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1)
    >>> cb = Codebook(Path("dataset.yaml"), Path("trial.csv"), "demo", "id", "arm", "visit", "A", "B", None,
    ...               ("pre", "post"), (), (crp,))
    >>> cb.baseline, cb.outcome("crp").label
    ('pre', 'CRP')
    """

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
    outcomes: tuple[Outcome, ...]  # empty when the codebook has only a panel
    visit_times: dict[str, float] = field(default_factory=dict)
    panel: Panel | None = None
    enrolled: int | None = None  # assessed for eligibility (CONSORT enrolment); the table is checked against it
    ice: IceSpec | None = None

    @property
    def baseline(self) -> str:
        return self.visits[0]

    def outcome(self, key: str) -> Outcome:
        for o in self.outcomes:
            if o.key == key:
                return o
        raise KeyError(key)


def schema() -> dict:
    """The JSON Schema of a codebook (``schemas/dataset.schema.yaml``, shipped with the package).

    Returns
    -------
    dict
        The schema, as loaded from its YAML.

    Examples
    --------
    >>> schema()["required"]
    ['table', 'columns', 'arms', 'visits']
    """
    text = resources.files("pnitrial").joinpath("schemas/dataset.schema.yaml").read_text()
    return yaml.safe_load(text)


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable: the base class reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found the key {key!r} twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _short(value, chars: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _describe(value) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {_short(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a mapping (key: value pairs)"
    return type(value).__name__


_TYPES = {
    "object": "a mapping (key: value pairs)",
    "array": "a list",
    "string": "a text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
}


def _schema_message(err: jsonschema.ValidationError) -> str:
    """jsonschema's message, without echoing a long value; type and enum errors say what was expected."""
    inst = err.instance
    if err.validator == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        hint = ""
        if "string" in want and isinstance(inst, bool | int | float):
            hint = " (write it in quotes: YAML reads yes/no/on/off as booleans and digits as numbers)"
        return f"expected {' or '.join(_TYPES.get(w, w) for w in want)}, found {_describe(inst)}{hint}"
    if err.validator == "enum":
        return f"expected one of {err.validator_value}, found {_short(inst)}"
    if err.validator == "anyOf" and not err.absolute_path:
        return "expected the key 'outcomes' (one entry per outcome) or 'panel' (or both), found neither"
    if err.validator == "additionalProperties" and isinstance(inst, dict):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        close = {k: difflib.get_close_matches(str(k), allowed, n=1) for k in extra}
        said = ", ".join(_short(k) + (f" (did you mean '{close[k][0]}'?)" if close[k] else "") for k in extra)
        return f"unknown key{'s' if len(extra) > 1 else ''} {said}; expected only {allowed}"
    if err.validator == "minimum":
        return f"expected a number of at least {err.validator_value}, found {_short(inst)}"
    if err.validator == "exclusiveMinimum":
        return f"expected a number above {err.validator_value}, found {_short(inst)}"
    if err.validator in ("minItems", "maxItems") and isinstance(inst, list):
        bound = "at least" if err.validator == "minItems" else "at most"
        n = err.validator_value
        return f"expected {bound} {n} item{'s' if n != 1 else ''}, found {len(inst)}: {_short(inst)}"
    if err.validator == "uniqueItems" and isinstance(inst, list):
        twice = sorted({repr(v) for v in inst if inst.count(v) > 1})
        return f"expected every item once, found {', '.join(twice)} more than once"
    if err.validator == "minLength" and isinstance(inst, str):
        return "expected a non-empty text, found ''"
    if err.validator == "pattern" and isinstance(inst, str):
        return f"{_short(inst)} does not match {err.validator_value!r}: expected a plain name starting with a letter"
    message = err.message
    full = repr(inst)
    if len(full) > 40 and full in message:
        message = message.replace(full, _short(inst))
    return message if len(message) <= 300 else message[:297] + "..."


def _schema_problem(path: Path, err: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    return f"{path}: key '{where}': {_schema_message(err)}"


_EXPECTED = "expected a YAML mapping of codebook keys (table:, columns:, arms:, visits:, outcomes: or panel:)"


def read_codebook(path: str | Path) -> dict:
    """The codebook's YAML, checked against the schema; problems name the file and the key.

    Parameters
    ----------
    path : str or Path
        The codebook file (UTF-8 YAML).

    Returns
    -------
    dict
        The codebook as a mapping, valid under `schema` (no cross-key checks: see `load_codebook`).

    Raises
    ------
    ValidationError
        When the file is missing or unreadable, is not YAML (or repeats a key), is not a mapping, or
        breaks the schema; every schema problem is listed with its key.

    Examples
    --------
    >>> import contextlib, tempfile
    >>> spec = {"table": "trial.csv", "columns": {"participant": "id", "arm": "arm", "visit": "visit"},
    ...         "arms": {"intervention": "A", "control": "B"}, "visits": ["pre", "post"],
    ...         "outcomes": {"crp": {"label": "CRP", "unit": "mg/L", "family": "biomarker", "transform": "logarithm"}}}
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     _ = Path("dataset.yaml").write_text(yaml.safe_dump(spec))
    ...     try:
    ...         read_codebook("dataset.yaml")
    ...     except ValidationError as exc:
    ...         print(exc)
    input validation failed with 1 problem:
      - dataset.yaml: key 'outcomes/crp/transform': expected one of ['none', 'log'], found 'logarithm'
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError([f"{path}: codebook file not found"]) from None
    except IsADirectoryError:
        raise ValidationError([f"{path}: is a directory, expected a codebook file (YAML)"]) from None
    except UnicodeDecodeError:
        raise ValidationError([f"{path}: not UTF-8 text; expected a YAML codebook saved as UTF-8"]) from None
    except OSError as exc:
        raise ValidationError([f"{path}: cannot read the codebook ({exc.strerror})"]) from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ValidationError([f"{path}: {where}not valid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([f"{path}: not valid YAML: {exc}"]) from None
    if raw is None:
        raise ValidationError([f"{path}: the codebook is empty; {_EXPECTED}"])
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else f"a single value ({_describe(raw)})"
        raise ValidationError([f"{path}: the codebook is {kind}; {_EXPECTED}"])
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        raise ValidationError([_schema_problem(path, e) for e in errors])
    return raw


def load_codebook(path: str | Path) -> Codebook:
    """Read and validate a codebook; every problem is reported with its key.

    Beyond the schema (`read_codebook`), checks what spans keys: distinct arm labels, visit times
    for exactly the visits, ranges, no column used twice, and the panel's analytes and ignored columns.

    Parameters
    ----------
    path : str or Path
        The codebook file; its tables are resolved relative to it.

    Returns
    -------
    Codebook
        The typed codebook.

    Raises
    ------
    ValidationError
        Listing every problem of the codebook (the tables are checked later, by
        `pnitrial.data.validate.validate_table`).

    Examples
    --------
    >>> import tempfile
    >>> spec = {"table": "trial.csv", "columns": {"participant": "id", "arm": "arm", "visit": "visit"},
    ...         "arms": {"intervention": "A", "control": "B"}, "visits": ["pre", "post"],
    ...         "outcomes": {"crp": {"label": "CRP", "unit": "mg/L", "family": "biomarker", "transform": "log"}}}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "dataset.yaml"
    ...     _ = path.write_text(yaml.safe_dump(spec))
    ...     cb = load_codebook(path)
    >>> cb.name, cb.table.name, cb.visits, [o.key for o in cb.outcomes]
    ('dataset', 'trial.csv', ('pre', 'post'), ['crp'])
    """
    path = Path(path)
    raw = read_codebook(path)
    problems = []
    arms = raw["arms"]
    if len(set(arms.values())) != len(arms):
        problems.append(f"{path}: key 'arms': labels must differ, got {sorted(arms.values())}")
    times = raw.get("visit_times", {})
    if times and set(times) != set(raw["visits"]):
        problems.append(f"{path}: key 'visit_times': must give a time for exactly the visits {raw['visits']}")
    outcomes = []
    for key, spec in raw.get("outcomes", {}).items():
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
                better=spec.get("better"),
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
            ignore=tuple(spec.get("ignore", ())),
        )
        clash = sorted(set(panel.analytes or ()) & {o.key for o in outcomes})
        if clash:
            problems.append(f"{path}: key 'panel/analytes': names also used as outcome keys: {clash}")
        keys = sorted(set(panel.ignore) & {cols["participant"], cols["visit"]})
        if keys:
            problems.append(f"{path}: key 'panel/ignore': the participant and visit columns cannot be ignored: {keys}")
        both = sorted(set(panel.ignore) & set(panel.analytes or ()))
        if both:
            problems.append(f"{path}: key 'panel/ignore': columns also listed under 'panel/analytes': {both}")
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
        enrolled=int(raw["enrolled"]) if "enrolled" in raw else None,
        ice=IceSpec(path.parent / raw["ice"]["table"], **raw["ice"]["columns"]) if "ice" in raw else None,
    )
