"""Every bad input tried on the validation, one case each, and the table in docs/bad_inputs.md.

Each case edits a copy of the small trial (.test/data, or .test/panel for panel cases), runs
load_codebook and build_long_frame (build_panel_frame for panels) and checks that one
ValidationError names the problem, that no input file changed and that no participant
identifier appears in the message. The documentation lists the exact message of every case;
`python tests/data/test_bad_inputs.py` rewrites it, and a test fails when it is out of date.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMALL

from pnitrial.data.codebook import load_codebook
from pnitrial.data.ice import read_ice
from pnitrial.data.longframe import build_long_frame
from pnitrial.data.panel import build_panel_frame
from pnitrial.data.table import read_table
from pnitrial.errors import ValidationError

PANEL = ROOT / ".test" / "panel"
DOC = ROOT / "docs" / "bad_inputs.md"
PLACEHOLDER = "<dir>"


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # the bad input, for the documentation
    make: Callable[[Path], None]  # edits the copy, given its codebook path
    expect: str  # text the message must contain
    panel: bool = False  # a panel case (.test/panel, build_panel_frame)


# ---- editing the copy -------------------------------------------------------------------------


def _raw(cb: Path) -> dict:
    return yaml.safe_load(cb.read_text())


def _dump(cb: Path, raw: dict) -> None:
    cb.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))


def codebook(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    """Change the parsed codebook in place with fn."""

    def make(cb: Path) -> None:
        raw = _raw(cb)
        fn(raw)
        _dump(cb, raw)

    return make


def outcome(key: str, **changes) -> Callable[[Path], None]:
    return codebook(lambda raw: raw["outcomes"][key].update(changes))


def text(name: str, content: str | bytes) -> Callable[[Path], None]:
    """Replace a file of the copy by this text or these bytes."""

    def make(cb: Path) -> None:
        path = cb.parent / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return make


def table(fn: Callable[[pd.DataFrame], pd.DataFrame | None], name: str = "trial.csv") -> Callable[[Path], None]:
    """Change the table (read as text) with fn, which edits in place or returns a new frame."""

    def make(cb: Path) -> None:
        path = cb.parent / name
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        out = fn(df)
        (df if out is None else out).to_csv(path, index=False)

    return make


def cells(column: str, rows: list[int], values: list[str], name: str = "trial.csv") -> Callable[[Path], None]:
    def fn(df: pd.DataFrame) -> None:
        df.loc[rows, column] = values

    return table(fn, name)


def lines(fn: Callable[[list[str]], list[str]], name: str = "trial.csv") -> Callable[[Path], None]:
    """Change the raw lines of a table."""

    def make(cb: Path) -> None:
        path = cb.parent / name
        path.write_text("".join(fn(path.read_text().splitlines(keepends=True))))

    return make


def both(*makers: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(cb: Path) -> None:
        for m in makers:
            m(cb)

    return make


def _drop_arm_rows(arm: str, keep: int | None = None, visit: str | None = None):
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        ids = df.loc[df["arm"] == arm, "participant"].unique()
        drop = (df["arm"] == arm) & ~df["participant"].isin(ids[:keep] if keep else [])
        if visit:
            drop &= df["visit"] == visit
        return df[~drop]

    return fn


def _without_baseline(df: pd.DataFrame) -> pd.DataFrame:
    pid = df.loc[df["visit"] == "post", "participant"].iloc[0]
    return df[~((df["participant"] == pid) & (df["visit"] == "pre"))]


def _arm_changes(df: pd.DataFrame) -> None:
    pid = df.loc[df["visit"] == "post", "participant"].iloc[0]
    rows = df.index[df["participant"] == pid]
    df.loc[rows[1], "arm"] = "waitlist" if df.loc[rows[0], "arm"] == "MBPM" else "MBPM"


def _add_covariate(name: str, values: Callable[[pd.DataFrame], object]):
    """Add a column to the table and list it as a covariate."""

    def make(cb: Path) -> None:
        table(lambda df: df.assign(**{name: values(df)}))(cb)
        codebook(lambda raw: raw["covariates"].append(name))(cb)

    return make


def _many_levels(df: pd.DataFrame) -> pd.DataFrame:
    extra = pd.DataFrame(
        {"participant": [f"HC-{i:02d}" for i in range(10)], "arm": "healthy", "visit": "pre", "age": "40", "sex": "F"}
    )
    df = pd.concat([df, extra], ignore_index=True).fillna("")
    df["sex"] = [f"group {i}" for i in range(len(df))]
    return df


def _with_plate(df: pd.DataFrame) -> pd.DataFrame:
    df.insert(2, "plate", [f"PL-{i % 3 + 1}" for i in range(len(df))])
    return df


def _panel_arm(agree: bool) -> Callable[[Path], None]:
    def make(cb: Path) -> None:
        trial = pd.read_csv(cb.parent / "trial.csv", dtype=str, keep_default_na=False)
        arm = trial.set_index(["participant", "visit"])["arm"]

        def fn(df: pd.DataFrame) -> pd.DataFrame:
            df.insert(2, "arm", [arm[(p, v)] for p, v in zip(df["participant"], df["visit"], strict=True)])
            if not agree:
                df.loc[5, "arm"] = "MBPM" if df.loc[5, "arm"] != "MBPM" else "waitlist"
            return df

        table(fn, "panel.csv")(cb)

    return make


def _semicolons(ls: list[str]) -> list[str]:
    return [line.replace(",", ";") for line in ls]


def _tabs(ls: list[str]) -> list[str]:
    return [line.replace(",", "\t") for line in ls]


CODEBOOK_CASES = [
    Case("codebook-missing", "codebook file does not exist", lambda cb: cb.unlink(), "codebook file not found"),
    Case("codebook-directory", "codebook path is a directory", lambda cb: (cb.unlink(), cb.mkdir()), "is a directory"),
    Case("codebook-empty", "codebook file is empty", text("dataset.yaml", ""), "the codebook is empty"),
    Case("codebook-list", "codebook is a YAML list", text("dataset.yaml", "- table\n- columns\n"), "is a list"),
    Case("codebook-scalar", "codebook is a single YAML value", text("dataset.yaml", "trial.csv\n"), "a single value"),
    Case(
        "codebook-not-yaml",
        "codebook is not valid YAML (unclosed bracket)",
        text("dataset.yaml", "table: trial.csv\nvisits: [pre, post\n"),
        "not valid YAML",
    ),
    Case(
        "codebook-tab-indent",
        "codebook indented with a tab",
        lines(lambda ls: [ls[0], ls[1], "columns:\n", "\tparticipant: participant\n", *ls[3:]], "dataset.yaml"),
        "line 4, column 1: not valid YAML",
    ),
    Case(
        "codebook-duplicate-key",
        "an outcome written twice (YAML would keep the last silently)",
        lines(lambda ls: [*ls, "  bdi:\n", "    label: again\n"], "dataset.yaml"),
        "found the key 'bdi' twice",
    ),
    Case(
        "codebook-not-utf8",
        "codebook saved in Latin-1",
        text("dataset.yaml", "name: Essai contr\xf4l\xe9\n".encode("latin-1")),
        "not UTF-8 text",
    ),
    Case(
        "codebook-missing-key",
        "required key `visits` missing",
        codebook(lambda raw: raw.pop("visits")),
        "key '(top level)': 'visits' is a required property",
    ),
    Case(
        "codebook-unknown-key",
        "misspelt top-level key (`covariate`)",
        codebook(lambda raw: raw.update(covariate=["age"])),
        "unknown key 'covariate' (did you mean 'covariates'?)",
    ),
    Case(
        "codebook-no-outcomes-no-panel",
        "neither `outcomes` nor `panel`",
        codebook(lambda raw: raw.pop("outcomes")),
        "expected the key 'outcomes' (one entry per outcome) or 'panel' (or both), found neither",
    ),
    Case(
        "codebook-outcomes-empty",
        "`outcomes:` left empty",
        codebook(lambda raw: raw.update(outcomes=None)),
        "key 'outcomes': expected a mapping (key: value pairs), found nothing",
    ),
    Case(
        "codebook-unknown-transform",
        "unknown transform `sqrt`",
        outcome("bdi", transform="sqrt"),
        "key 'outcomes/bdi/transform': expected one of ['none', 'log'], found 'sqrt'",
    ),
    Case(
        "codebook-unknown-better",
        "direction of improvement `better: less`",
        outcome("bdi", better="less"),
        "key 'outcomes/bdi/better': expected one of ['lower', 'higher'], found 'less'",
    ),
    Case(
        "codebook-bad-outcome-key",
        "outcome key that is code (`__import__('os')`)",
        codebook(lambda raw: raw["outcomes"].update({"__import__('os')": raw["outcomes"]["bdi"]})),
        "does not match",
    ),
    Case(
        "codebook-outcome-without-family",
        "outcome without `family`",
        codebook(lambda raw: raw["outcomes"]["il6"].pop("family")),
        "key 'outcomes/il6': 'family' is a required property",
    ),
    Case(
        "codebook-lod-zero",
        "`lod: 0`",
        outcome("il6", lod=0),
        "key 'outcomes/il6/lod': expected a number above 0, found 0",
    ),
    Case(
        "codebook-lod-text",
        "`lod` written as text",
        outcome("il6", lod="0.06 pg/mL"),
        "key 'outcomes/il6/lod': expected a number, found the text '0.06 pg/mL'",
    ),
    Case(
        "codebook-range-reversed",
        "`range: [63, 0]`",
        outcome("bdi", range=[63, 0]),
        "lower bound must be below upper",
    ),
    Case(
        "codebook-range-one-number",
        "`range: [63]`",
        outcome("bdi", range=[63]),
        "key 'outcomes/bdi/range': expected at least 2 items, found 1",
    ),
    Case(
        "codebook-log-negative-range",
        "log transform with a negative `range`",
        outcome("oxytocin", range=[-1, 500]),
        "log transform needs a non-negative range",
    ),
    Case(
        "codebook-one-visit",
        "a single visit",
        codebook(lambda raw: raw.update(visits=["pre"])),
        "key 'visits': expected at least 2 items, found 1",
    ),
    Case(
        "codebook-duplicate-visits",
        "a visit listed twice",
        codebook(lambda raw: raw.update(visits=["pre", "pre"])),
        "key 'visits': expected every item once, found 'pre' more than once",
    ),
    Case(
        "codebook-visits-numbers",
        "visits written as numbers (`[0, 8]`)",
        codebook(lambda raw: raw.update(visits=[0, 8])),
        "key 'visits/0': expected a text, found the number 0 (write it in quotes",
    ),
    Case(
        "codebook-arm-boolean",
        "arm label `yes` (YAML reads a boolean)",
        lines(lambda ls: [line.replace("intervention: MBPM", "intervention: yes") for line in ls], "dataset.yaml"),
        "key 'arms/intervention': expected a text, found the boolean True",
    ),
    Case(
        "codebook-same-arm-labels",
        "intervention and control with the same label",
        codebook(lambda raw: raw["arms"].update(control="MBPM")),
        "key 'arms': labels must differ",
    ),
    Case(
        "codebook-visit-times-mismatch",
        "`visit_times` for other visits",
        codebook(lambda raw: raw.update(visit_times={"pre": 0, "week8": 8})),
        "key 'visit_times': must give a time for exactly the visits",
    ),
    Case(
        "codebook-visit-times-text",
        "`visit_times` value not a number",
        codebook(lambda raw: raw.update(visit_times={"pre": 0, "post": "8 weeks"})),
        "key 'visit_times/post': expected a number",
    ),
    Case(
        "codebook-covariate-code",
        "covariate name that is not a plain name",
        codebook(lambda raw: raw["covariates"].append("age; drop")),
        "key 'covariates/2': 'age; drop' does not match",
    ),
    Case(
        "codebook-column-used-twice",
        "an outcome reading the arm column",
        outcome("bdi", column="arm"),
        "columns used twice (identifier, covariate or outcome): ['arm']",
    ),
    Case(
        "codebook-columns-incomplete",
        "`columns` without `participant`",
        codebook(lambda raw: raw["columns"].pop("participant")),
        "key 'columns': 'participant' is a required property",
    ),
    Case(
        "codebook-table-empty",
        "`table: ''`",
        codebook(lambda raw: raw.update(table="")),
        "key 'table': expected a non-empty text",
    ),
    Case(
        "codebook-enrolled-zero",
        "`enrolled: 0`",
        codebook(lambda raw: raw.update(enrolled=0)),
        "key 'enrolled': expected a number of at least 1, found 0",
    ),
    Case(
        "codebook-enrolled-not-whole",
        "`enrolled: 40.5`",
        codebook(lambda raw: raw.update(enrolled=40.5)),
        "key 'enrolled': expected a whole number, found the number 40.5",
    ),
    Case(
        "codebook-enrolled-below-randomised",
        "`enrolled` smaller than the participants randomised in the table",
        codebook(lambda raw: raw.update(enrolled=5)),
        "key 'enrolled': expected at least the 20 participants randomised in trial.csv",
    ),
]

TABLE_CASES = [
    Case(
        "table-missing",
        "table file does not exist",
        codebook(lambda raw: raw.update(table="nope.csv")),
        "nope.csv: table file not found",
    ),
    Case(
        "table-directory",
        "`table` names a directory",
        codebook(lambda raw: raw.update(table=".")),
        "is a directory, expected a CSV table file",
    ),
    Case("table-0-bytes", "table file of 0 bytes", text("trial.csv", ""), "the file is empty (0 bytes)"),
    Case("table-blank", "table of blank lines only", text("trial.csv", "\n\n\n"), "holds only blank lines"),
    Case(
        "table-header-only",
        "table with a header line and no rows",
        lines(lambda ls: ls[:1]),
        "the table has a header line but no data rows",
    ),
    Case(
        "table-semicolons",
        "semicolon-separated table",
        lines(_semicolons),
        "the file looks semicolon-separated",
    ),
    Case("table-tabs", "tab-separated table", lines(_tabs), "the file looks tab-separated"),
    Case(
        "table-semicolons-decimal-commas",
        "semicolon-separated table with decimal commas",
        lines(lambda ls: [ls[0].replace(",", ";")] + [line.replace(",", ";").replace(".", ",") for line in ls[1:]]),
        "the file looks semicolon-separated",
    ),
    Case(
        "table-not-utf8",
        "table saved in Latin-1",
        lambda cb: (cb.parent / "trial.csv").write_bytes(
            (cb.parent / "trial.csv")
            .read_text()
            .replace("PNI-103,healthy,pre,55,F", "PNI-103,healthy,pre,55,f\xe9m")
            .encode("latin-1")
        ),
        "not UTF-8 text",
    ),
    Case(
        "table-utf16",
        "table saved as UTF-16",
        lambda cb: (cb.parent / "trial.csv").write_bytes((cb.parent / "trial.csv").read_text().encode("utf-16")),
        "(it is UTF-16)",
    ),
    Case(
        "table-excel",
        "an Excel workbook renamed to .csv",
        text("trial.csv", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U0#\xf4\x00\x00\x00L\x02"),
        "(it looks like an Excel workbook: export it as CSV)",
    ),
    Case(
        "table-extra-field",
        "a row with an unquoted decimal comma (one field too many)",
        lines(lambda ls: [*ls[:5], ls[5].replace(".", ",", 1), *ls[6:]]),
        "row 5 (file line 6): expected 8 comma-separated fields like the header line, found 9",
    ),
    Case(
        "table-short-row",
        "a truncated row (fields missing)",
        lines(lambda ls: [*ls[:7], ls[7].rsplit(",", 2)[0] + "\n", *ls[8:]]),
        "row 7 (file line 8): expected 8 comma-separated fields like the header line, found 6",
    ),
    Case(
        "table-unclosed-quote",
        "an unclosed quote",
        lines(lambda ls: [*ls[:3], ls[3].replace(",F,", ',"F,'), *ls[4:]]),
        "file line 4: cannot be read as CSV (unexpected end of data) (a quote that is never closed?)",
    ),
    Case(
        "table-nul-byte",
        "a NUL byte in a cell",
        lines(lambda ls: [*ls[:3], ls[3].replace(",F,", ",F\x00,"), *ls[4:]]),
        "holds a NUL character",
    ),
    Case(
        "table-missing-column",
        "an outcome column missing",
        table(lambda df: df.drop(columns=["il6"])),
        "missing column 'il6' (from codebook key outcomes.il6)",
    ),
    Case(
        "table-column-case",
        "header `Arm` where the codebook says `arm`",
        lines(lambda ls: [ls[0].replace("arm", "Arm"), *ls[1:]]),
        "the header has 'Arm' for 'arm': names must match exactly",
    ),
    Case(
        "table-no-header",
        "table without a header line",
        lines(lambda ls: ls[1:]),
        "the first line looks like data",
    ),
    Case(
        "table-duplicate-column",
        "an outcome column twice in the header",
        lines(lambda ls: [line.rstrip("\n") + "," + line.rstrip("\n").split(",")[-1] + "\n" for line in ls]),
        "column 'bdi' appears 2 times in the header (columns 8, 9)",
    ),
    Case(
        "table-duplicate-rows",
        "a participant x visit row twice",
        table(lambda df: pd.concat([df, df.iloc[[3]]], ignore_index=True)),
        "rows 4, 45 (file lines 5, 46): expected one row per participant and visit, found duplicates",
    ),
    Case(
        "table-arm-changes",
        "arm not constant within a participant",
        table(_arm_changes),
        "expected the same arm at every visit of a participant",
    ),
    Case(
        "table-unknown-arm",
        "arm label with a typo (`MBSR`)",
        cells("arm", [2], ["MBSR"]),
        "row 3 (file line 4): expected one of ['MBPM', 'waitlist', 'healthy'], "
        "found 1 distinct unexpected value: 'MBSR'",
    ),
    Case(
        "table-unknown-visit",
        "unknown visit (`week4`)",
        cells("visit", [5], ["week4"]),
        "expected one of ['pre', 'post'], found 1 distinct unexpected value: 'week4'",
    ),
    Case(
        "table-swap-participant-arm",
        "codebook maps participant and arm columns swapped",
        codebook(lambda raw: raw["columns"].update(participant="arm", arm="participant")),
        "found 26 distinct unexpected values (not shown: more than 5, or as many as there are participants",
    ),
    Case(
        "table-swap-participant-visit",
        "codebook maps participant and visit columns swapped",
        codebook(lambda raw: raw["columns"].update(participant="visit", visit="participant")),
        "found 26 distinct unexpected values (not shown",
    ),
    Case(
        "table-identifier-as-arm",
        "identifiers typed into the arm column of a few rows",
        cells("arm", [4, 9], ["PNI-103", "PNI-106"]),
        "found 2 distinct unexpected values (not shown: they include participant identifiers",
    ),
    Case(
        "table-empty-participant",
        "empty participant cell",
        cells("participant", [7], [""]),
        "column 'participant', row 8 (file line 9): expected a value, found an empty cell",
    ),
    Case(
        "table-outcome-word",
        "outcome cell `twelve`",
        cells("bdi", [4], ["twelve"]),
        "column 'bdi', row 5 (file line 6): expected a number or an empty cell; found 1 distinct unexpected value: "
        "'twelve'",
    ),
    Case(
        "table-outcome-long-word",
        "outcome cell with a long note",
        cells("bdi", [4], ["participant refused the questionnaire"]),
        "found 1 distinct unexpected value: 'participant refus...'",
    ),
    Case(
        "table-decimal-comma",
        "decimal comma in a quoted cell (`12,5`)",
        cells("il6", [6], ["12,5"]),
        "(decimal commas: write 12.5, not 12,5",
    ),
    Case(
        "table-digit-grouping",
        "digit grouping (`1_000`)",
        cells("oxytocin", [6], ["1_000"]),
        "found 1 distinct unexpected value: '1_000' (digit grouping",
    ),
    Case(
        "table-arabic-indic-digit",
        "Arabic-Indic digit (`٣`)",
        cells("bdi", [6], ["\u0663"]),
        "only the ASCII digits 0-9 count as digits",
    ),
    Case(
        "table-full-width-digit",
        "full-width digits (`１２`)",
        cells("bdi", [6], ["\uff11\uff12"]),
        "only the ASCII digits 0-9 count as digits",
    ),
    Case(
        "table-infinity",
        "`infinity` as a value",
        cells("il6", [8], ["infinity"]),
        "(infinity is not a measurement)",
    ),
    Case(
        "table-null-word",
        "`NULL` for a missing value",
        cells("il6", [8], ["NULL"]),
        "write a missing value as an empty cell or one of",
    ),
    Case(
        "table-overflow",
        "a number too large for a double (`1e999`)",
        cells("il6", [8], ["1e999"]),
        "row 9 (file line 10): expected a finite number",
    ),
    Case(
        "table-marker-without-lod",
        "below-LOD marker for an outcome without `lod`",
        cells("bdi", [1], ["<3"]),
        "below-LOD marker found but the codebook gives no 'lod' for outcome 'bdi'",
    ),
    Case(
        "table-marker-zero",
        "below-LOD marker `<0`",
        cells("il6", [1], ["<0"]),
        "expected a below-LOD marker with a positive limit",
    ),
    Case(
        "table-negative-concentration",
        "negative concentration",
        cells("il6", [0], ["-1.2"]),
        "column 'il6', row 1 (file line 2): expected a non-negative concentration",
    ),
    Case(
        "table-zero-log-without-lod",
        "zero under a log transform without `lod`",
        both(codebook(lambda raw: raw["outcomes"]["il6"].pop("lod")), cells("il6", [0], ["0"])),
        "log transform needs positive values",
    ),
    Case(
        "table-score-out-of-range",
        "scores outside `range`",
        cells("bdi", [2, 9], ["64", "-1"]),
        "column 'bdi', rows 3, 10 (file lines 4, 11): expected a score within [0, 63]",
    ),
    Case(
        "table-extreme-value",
        "oxytocin in the wrong units for one row (×1e9)",
        cells("oxytocin", [10], ["2.5e10"]),
        "row 11 (file line 12): expected a plausible value: more than 1,000,000 times the median size",
    ),
    Case(
        "table-missing-baseline",
        "a trial participant without a baseline row",
        table(_without_baseline),
        "trial participants without a baseline ('pre') row",
    ),
    Case(
        "table-baseline-only",
        "a table holding only the baseline visit",
        table(lambda df: df[df["visit"] == "pre"]),
        "every row of the trial arms is at the baseline visit 'pre'",
    ),
    Case(
        "table-arm-without-follow-up",
        "one arm without any later-visit row",
        table(_drop_arm_rows("waitlist", visit="post")),
        "arm 'waitlist' has no row at a later visit (['post']); expected follow-up rows in both trial arms",
    ),
    Case(
        "table-too-few-per-arm",
        "an arm with 2 participants (min_per_arm 3)",
        table(_drop_arm_rows("MBPM", keep=2)),
        "arm 'MBPM' has 2 participant(s) with a baseline row; expected at least 3",
    ),
    Case(
        "table-arm-absent",
        "no row of the control arm",
        table(_drop_arm_rows("waitlist")),
        "arm 'waitlist' has 0 participant(s) with a baseline row",
    ),
    Case(
        "table-covariate-typo",
        "numeric covariate with a typo (`4O`)",
        cells("age", [3], ["4O"]),
        "column 'age', row 4 (file line 5): expected a number like the other values of this covariate (or an empty "
        "cell); found 1 distinct unexpected value: '4O'",
    ),
    Case(
        "table-covariate-overflow",
        "numeric covariate `1e999`",
        cells("age", [3], ["1e999"]),
        "column 'age', row 4 (file line 5): expected a finite number",
    ),
    Case(
        "table-covariate-constant",
        "constant numeric covariate",
        table(lambda df: df.assign(age="50")),
        "covariate 'age' has one value in all rows of the trial arms",
    ),
    Case(
        "table-covariate-single-level",
        "categorical covariate with a single level in the trial arms",
        table(lambda df: df.assign(sex=["M" if a == "healthy" else "F" for a in df["arm"]])),
        "covariate 'sex' has one level in all rows of the trial arms",
    ),
    Case(
        "table-covariate-collinear",
        "age in years and in months",
        _add_covariate("age_months", lambda df: (df["age"].astype(int) * 12).astype(str)),
        "covariates 'age' and 'age_months' are collinear",
    ),
    Case(
        "table-covariate-copy-of-categorical",
        "a numeric 0/1 copy of the categorical `sex`",
        _add_covariate("female", lambda df: (df["sex"] == "F").astype(int).astype(str)),
        "covariates 'sex' and 'female' are collinear",
    ),
    Case(
        "table-covariate-copy-of-arm",
        "a covariate that codes the arm",
        _add_covariate("treated", lambda df: (df["arm"] == "MBPM").astype(int).astype(str)),
        "covariate 'treated' is collinear with the arm",
    ),
    Case(
        "table-covariate-long-cell",
        "categorical covariate cell of 5,000 characters",
        cells("sex", [12], ["x" * 5000]),
        "expected a category label of at most 100 characters, found cells of up to 5,000 characters",
    ),
    Case(
        "table-covariate-many-levels",
        "categorical covariate with 54 levels",
        table(_many_levels),
        "expected a categorical covariate with at most 50 levels, found 54",
    ),
    Case(
        "table-covariate-identifier",
        "categorical covariate holding a code per participant",
        table(lambda df: df.assign(sex=["S" + p[-3:] for p in df["participant"]])),
        "levels each held by a single participant (an identifier or free text?)",
    ),
    Case(
        "table-many-problems",
        "several problems at once",
        both(cells("bdi", [0], ["x"]), cells("il6", [1], ["-3"]), cells("arm", [2], ["other"])),
        "input validation failed with 4 problems",
    ),
]


def _ice(rows: str, columns: dict | None = None) -> Callable[[Path], None]:
    """An intercurrent-event table ice.csv with these data rows, named by the codebook."""
    cols = columns or {"participant": "participant", "visit": "from", "strategy": "strategy"}
    return both(
        codebook(lambda raw: raw.update(ice={"table": "ice.csv", "columns": cols})),
        text("ice.csv", "participant,from,strategy\n" + rows),
    )


ICE_CASES = [
    Case(
        "ice-unknown-participant",
        "intercurrent-event table naming a participant the trial table does not have",
        _ice("PNI-102,post,JR\nPNI-999,post,CR\n"),
        "ice.csv: column 'participant', row 2 (file line 3): expected a participant of the trial table",
    ),
    Case(
        "ice-healthy-participant",
        "intercurrent event of a healthy control",
        _ice("PNI-103,post,JR\n"),
        "ice.csv: column 'participant', row 1 (file line 2): expected a participant of a randomised arm",
    ),
    Case(
        "ice-twice",
        "two events for one participant",
        _ice("PNI-102,post,JR\nPNI-102,post,CR\n"),
        "ice.csv: column 'participant', rows 1, 2 (file lines 2, 3): expected one row per participant",
    ),
    Case(
        "ice-baseline-visit",
        "an event at baseline",
        _ice("PNI-102,pre,JR\n"),
        "ice.csv: column 'from', row 1 (file line 2): expected a post-baseline visit ['post']",
    ),
    Case(
        "ice-unknown-strategy",
        "strategy `J2R` (rbmi's name is JR)",
        _ice("PNI-102,post,J2R\n"),
        "ice.csv: column 'strategy', row 1 (file line 2): expected one of ['MAR', 'JR', 'CR', 'CIR']",
    ),
    Case(
        "ice-missing-column",
        "`ice/columns` naming a column the ICE table lacks",
        _ice("PNI-102,post,JR\n", {"participant": "participant", "visit": "visit", "strategy": "strategy"}),
        "ice.csv: missing column ['visit'] (codebook key ice/columns)",
    ),
]

PANEL_CASES = [
    Case(
        "panel-missing",
        "panel table file does not exist",
        codebook(lambda raw: raw["panel"].update(table="olink.csv")),
        "olink.csv: table file not found (named by the codebook key 'panel/table')",
        panel=True,
    ),
    Case(
        "panel-missing-family",
        "panel without `family`",
        codebook(lambda raw: raw["panel"].pop("family")),
        "key 'panel': 'family' is a required property",
        panel=True,
    ),
    Case(
        "panel-unknown-key",
        "unknown panel key (`normalise`)",
        codebook(lambda raw: raw["panel"].update(normalise="quantile")),
        "key 'panel': unknown key 'normalise'",
        panel=True,
    ),
    Case(
        "panel-analyte-is-outcome",
        "panel analyte named like an outcome",
        codebook(lambda raw: raw["panel"].update(analytes=["bdi"])),
        "key 'panel/analytes': names also used as outcome keys: ['bdi']",
        panel=True,
    ),
    Case(
        "panel-ignore-participant",
        "`panel.ignore` lists the participant column",
        codebook(lambda raw: raw["panel"].update(ignore=["participant"])),
        "key 'panel/ignore': the participant and visit columns cannot be ignored",
        panel=True,
    ),
    Case(
        "panel-0-bytes",
        "panel table of 0 bytes",
        text("panel.csv", ""),
        "panel.csv: the file is empty (0 bytes)",
        panel=True,
    ),
    Case(
        "panel-header-only",
        "panel table with a header line only",
        lines(lambda ls: ls[:1], "panel.csv"),
        "panel.csv: the table has a header line but no data rows",
        panel=True,
    ),
    Case(
        "panel-semicolons",
        "semicolon-separated panel table",
        lines(_semicolons, "panel.csv"),
        "the file looks semicolon-separated",
        panel=True,
    ),
    Case(
        "panel-missing-visit-column",
        "panel table without the visit column",
        table(lambda df: df.drop(columns=["visit"]), "panel.csv"),
        "missing column 'visit' (the codebook's participant and visit columns)",
        panel=True,
    ),
    Case(
        "panel-not-a-number",
        "analyte cell `high`",
        cells("P0007", [3], ["high"], "panel.csv"),
        "panel.csv: column 'P0007', row 4 (file line 5): expected a number or an empty cell; found 1 distinct "
        "unexpected value: 'high'",
        panel=True,
    ),
    Case(
        "panel-digit-grouping",
        "analyte cell `1_000`",
        cells("P0010", [2], ["1_000"], "panel.csv"),
        "column 'P0010', row 3 (file line 4): expected a number or an empty cell; found 1 distinct unexpected "
        "value: '1_000' (digit grouping",
        panel=True,
    ),
    Case(
        "panel-qc-column",
        "a plate-ID column not listed under `panel.ignore`",
        table(_with_plate, "panel.csv"),
        "(not an analyte? list it under the codebook key panel/ignore)",
        panel=True,
    ),
    Case(
        "panel-ignore-absent",
        "`panel.ignore` names a column the panel lacks",
        codebook(lambda raw: raw["panel"].update(ignore=["plate"])),
        "missing column 'plate' (from codebook key panel/ignore)",
        panel=True,
    ),
    Case(
        "panel-repeated-arm-disagrees",
        "panel repeats the arm column and one row disagrees",
        _panel_arm(agree=False),
        "column 'arm', row 6 (file line 7): expected the same value as the trial table trial.csv",
        panel=True,
    ),
    Case(
        "panel-row-without-trial-row",
        "panel rows with no trial-table row",
        both(cells("participant", [0], ["PNI-999"], "panel.csv"), cells("visit", [1], ["followup"], "panel.csv")),
        "rows 1, 2 (file lines 2, 3): expected a participant and visit that has a row in the trial table",
        panel=True,
    ),
    Case(
        "panel-duplicate-rows",
        "a panel row twice",
        table(lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True), "panel.csv"),
        "expected one row per participant and visit, found duplicates",
        panel=True,
    ),
    Case(
        "panel-log-zero",
        "zero and negative values under a log panel",
        both(
            codebook(lambda raw: raw["panel"].update(analytes=["P0001", "P0002"], transform="log")),
            cells("P0002", [4, 6], ["0", "-1.5"], "panel.csv"),
        ),
        "column 'P0002', rows 5, 7 (file lines 6, 8): expected a positive value (panel transform is log)",
        panel=True,
    ),
    Case(
        "panel-listed-analyte-missing",
        "`panel.analytes` names a column the panel lacks",
        codebook(lambda raw: raw["panel"].update(analytes=["P0001", "P9999"])),
        "missing column 'P9999' (from codebook key panel/analytes)",
        panel=True,
    ),
    Case(
        "panel-extreme-value",
        "analyte value a million times its typical size",
        cells("P0003", [7], ["4.2e8"], "panel.csv"),
        "column 'P0003', row 8 (file line 9): expected a plausible value",
        panel=True,
    ),
    Case(
        "panel-unnamed-column",
        "a column with values but no name in the header",
        lines(lambda ls: [ls[0].rstrip("\n") + ",\n"] + [line.rstrip("\n") + ",1\n" for line in ls[1:]], "panel.csv"),
        "header column 123 without a name but with values",
        panel=True,
    ),
    Case(
        "panel-duplicate-column",
        "an analyte column twice in the header",
        lines(lambda ls: [line.rstrip("\n") + "," + line.split(",")[2] + "\n" for line in ls], "panel.csv"),
        "column 'P0001' appears 2 times in the header (columns 3, 123)",
        panel=True,
    ),
    Case(
        "panel-many-bad-columns",
        "29 analyte columns with a word",
        table(lambda df: df.assign(**{c: "x" for c in df.columns[2:31]}), "panel.csv"),
        "19 more analyte columns with the same problem",
        panel=True,
    ),
]

CASES = CODEBOOK_CASES + TABLE_CASES + ICE_CASES + PANEL_CASES


def _copy(case: Case, dst: Path) -> Path:
    shutil.copytree(PANEL if case.panel else SMALL, dst)
    return dst / "dataset.yaml"


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _identifiers(case: Case, folder: Path) -> set[str]:
    """Every participant identifier of the case's tables (as shipped and as edited)."""
    ids = set()
    for t in (PANEL / "trial.csv", SMALL / "trial.csv", folder / "trial.csv", folder / "panel.csv"):
        try:
            ids |= set(pd.read_csv(t, dtype=str, keep_default_na=False)["participant"].str.strip())
        except Exception:  # a deliberately broken table: the shipped ones still name the identifiers
            continue
    return {i for i in ids if i}


def run_case(case: Case, folder: Path) -> str:
    """The ValidationError message of a case built in folder, with its path replaced by PLACEHOLDER."""
    cb = _copy(case, folder)
    case.make(cb)
    with pytest.raises(ValidationError) as err:
        c = load_codebook(cb)
        build_panel_frame(c) if case.panel else build_long_frame(c)
        if c.ice is not None:
            read_ice(c, read_table(c.table))
    return str(err.value).replace(str(folder), PLACEHOLDER)


def doc_row(case: Case, message: str) -> str:
    head, *problems = message.split("\n")
    cell = "<br>".join(f"`` {p.removeprefix('  - ')} ``" for p in problems).replace("|", "\\|")
    stage = "panel" if case.panel else case.id.split("-")[0]
    what = case.what.replace("|", "\\|")
    return f"| `{case.id}` | {stage} | {what} | {cell} |"


DOC_HEAD = """# Bad inputs and their messages

Every bad input tried on pnitrial's validation, with the exact message it gives (`{placeholder}` stands
for the folder of the codebook). Each row is a test in `tests/data/test_bad_inputs.py`: the input is
built from the small trial in `.test/data` (`.test/panel` for panel rows), read with
`pnitrial.codebook.load_codebook` and `pnitrial.longframe.build_long_frame` (or
`pnitrial.panel.build_panel_frame`), and the test checks that the run stops with one
`ValidationError` holding this message, that no input file changed and that no participant
identifier appears in it. Regenerate with `python tests/data/test_bad_inputs.py` after changing a
message. Every message names the file and, for a table, the column, the rows (1-based data rows
and file lines) and what was expected; an offending cell is quoted only when it cannot be a
participant identifier (never a cell of the participant column, at most {n_values} distinct values,
each cut to {chars} characters).

{n} bad inputs: {n_cb} in the codebook, {n_table} in the trial table, {n_panel} for a panel.

| case | stage | bad input | message (one line per problem) |
|---|---|---|---|
"""


def render(messages: dict[str, str]) -> str:
    from pnitrial.data.table import MAX_VALUES_SHOWN, VALUE_CHARS

    head = DOC_HEAD.format(
        placeholder=PLACEHOLDER,
        n_values=MAX_VALUES_SHOWN,
        chars=VALUE_CHARS,
        n=len(CASES),
        n_cb=sum(c.id.startswith("codebook") for c in CASES),
        n_table=sum(c.id.startswith("table") for c in CASES),
        n_panel=sum(c.panel for c in CASES),
    )
    return head + "".join(doc_row(c, messages[c.id]) + "\n" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path):
    folder = tmp_path / "case"
    cb = _copy(case, folder)
    case.make(cb)
    before = _files(folder)
    with pytest.raises(ValidationError) as err:
        c = load_codebook(cb)
        build_panel_frame(c) if case.panel else build_long_frame(c)
        if c.ice is not None:
            read_ice(c, read_table(c.table))
    message = str(err.value)
    assert case.expect in message, message
    assert str(folder) in message or "codebook" in message  # names the file
    assert _files(folder) == before  # nothing changed, nothing written
    leaked = [i for i in _identifiers(case, folder) if i in message]
    assert not leaked, "participant identifiers in the message"
    assert doc_row(case, message.replace(str(folder), PLACEHOLDER)) in DOC.read_text(), "docs/bad_inputs.md is stale"


def test_doc_lists_exactly_the_cases():
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == [c.id for c in CASES], "regenerate: python tests/data/test_bad_inputs.py"
    assert len({c.id for c in CASES}) == len(CASES) >= 40


if __name__ == "__main__":  # python tests/data/test_bad_inputs.py: rewrite docs/bad_inputs.md
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        messages = {c.id: run_case(c, Path(tmp) / c.id) for c in CASES}
    wrong = [c.id for c in CASES if c.expect not in messages[c.id]]
    if wrong:
        sys.exit(f"messages without their expected text: {wrong}")
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render(messages))
    sys.stdout.write(f"wrote {DOC} ({len(CASES)} cases)\n")
