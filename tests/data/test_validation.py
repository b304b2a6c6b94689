"""One test per class of bad input: a clear message naming file, column and rows; input untouched."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMALL, edit_codebook, run

from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.data.panel import analyte_count, build_panel_frame
from pnitrial.data.table import file_lines, read_table
from pnitrial.data.validate import validate_table
from pnitrial.errors import ValidationError


def _table(cb_path: Path) -> pd.DataFrame:
    return pd.read_csv(cb_path.parent / "trial.csv", dtype=str, keep_default_na=False)


def _write(cb_path: Path, df: pd.DataFrame) -> None:
    df.to_csv(cb_path.parent / "trial.csv", index=False)


def _problems(cb_path: Path, **kw) -> list[str]:
    with pytest.raises(ValidationError) as err:
        build_long_frame(load_codebook(cb_path), **kw)
    return err.value.problems


def _row_of(df: pd.DataFrame, mask) -> int:
    return int(df.index[mask][0]) + 1  # 1-based data row


def test_clean_table_passes_and_input_is_not_modified(small_trial):
    table = small_trial.parent / "trial.csv"
    before = hashlib.sha256(table.read_bytes()).hexdigest(), hashlib.sha256(small_trial.read_bytes()).hexdigest()
    frame, meta = build_long_frame(load_codebook(small_trial))
    after = hashlib.sha256(table.read_bytes()).hexdigest(), hashlib.sha256(small_trial.read_bytes()).hexdigest()
    assert before == after
    assert set(frame["outcome"]) == {"oxytocin", "il6", "bdi"}
    assert meta.participants == {"intervention": 10, "control": 10, "healthy": 6}


def test_codebook_schema_error_names_key(small_trial):
    raw = yaml.safe_load(small_trial.read_text())
    raw["outcomes"]["bdi"]["transform"] = "sqrt"
    small_trial.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError) as err:
        load_codebook(small_trial)
    (msg,) = err.value.problems
    assert str(small_trial) in msg and "outcomes/bdi/transform" in msg and "'sqrt'" in msg


def test_codebook_missing_required_key(small_trial):
    raw = yaml.safe_load(small_trial.read_text())
    del raw["visits"]
    small_trial.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="'visits' is a required property"):
        load_codebook(small_trial)


def test_codebook_unsafe_outcome_name_is_refused(small_trial):
    raw = yaml.safe_load(small_trial.read_text())
    raw["outcomes"]["__import__('os')"] = raw["outcomes"]["bdi"]
    small_trial.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="does not match"):
        load_codebook(small_trial)


def test_missing_column(small_trial):
    _write(small_trial, _table(small_trial).drop(columns=["il6"]))
    (msg,) = _problems(small_trial)
    assert "trial.csv" in msg and "missing column 'il6'" in msg and "outcomes.il6" in msg


def test_duplicate_participant_visit(small_trial):
    df = _table(small_trial)
    df = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "columns 'participant' x 'visit'" in msg and "rows 4, 45" in msg and "one row per participant" in msg


def test_arm_changes_within_participant(small_trial):
    df = _table(small_trial)
    pid = df.loc[df["visit"] == "post", "participant"].iloc[0]
    rows = df.index[df["participant"] == pid]
    df.loc[rows[1], "arm"] = "waitlist" if df.loc[rows[0], "arm"] == "MBPM" else "MBPM"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert f"rows {rows[0] + 1}, {rows[1] + 1}" in msg and "same arm at every visit" in msg
    assert pid not in msg  # identifiers are never echoed


def test_unknown_arm_and_visit(small_trial):
    df = _table(small_trial)
    df.loc[2, "arm"] = "MBSR"
    df.loc[5, "visit"] = "week4"
    _write(small_trial, df)
    msgs = _problems(small_trial)
    assert any("column 'arm', row 3 (file line 4)" in m and "'MBSR'" in m for m in msgs)
    assert any("column 'visit', row 6 (file line 7)" in m and "expected one of ['pre', 'post']" in m for m in msgs)


def test_empty_identifier(small_trial):
    df = _table(small_trial)
    df.loc[7, "participant"] = ""
    _write(small_trial, df)
    msgs = _problems(small_trial)
    assert any("column 'participant', row 8 (file line 9): expected a value" in m for m in msgs)


def test_outcome_not_numeric(small_trial):
    df = _table(small_trial)
    df.loc[4, "bdi"] = "twelve"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'bdi', row 5 (file line 6): expected a number or an empty cell" in msg


def test_below_lod_marker_without_lod(small_trial):
    df = _table(small_trial)
    df.loc[1, "bdi"] = "<3"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'bdi', row 2" in msg and "no 'lod' for outcome 'bdi'" in msg


def test_negative_concentration(small_trial):
    df = _table(small_trial)
    df.loc[0, "il6"] = "-1.2"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'il6', row 1 (file line 2): expected a non-negative concentration" in msg


def test_zero_with_log_and_no_lod(small_trial):
    raw = yaml.safe_load(small_trial.read_text())
    del raw["outcomes"]["il6"]["lod"]
    small_trial.write_text(yaml.safe_dump(raw))
    df = _table(small_trial)
    df.loc[0, "il6"] = "0"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'il6', row 1" in msg and "log transform needs positive values" in msg


def test_zero_with_lod_counts_as_censored(small_trial):
    df = _table(small_trial)
    df.loc[0, "il6"] = "0"
    _write(small_trial, df)
    frame, _ = build_long_frame(load_codebook(small_trial))
    row = frame[(frame["outcome"] == "il6") & (frame["pid"] == 1) & (frame["visit_index"] == 0)]
    assert row["censored"].item() == 1
    assert row["value"].item() == pytest.approx(0.06 / 2**0.5)


def test_score_out_of_range(small_trial):
    df = _table(small_trial)
    df.loc[[2, 9], "bdi"] = ["64", "-1"]
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'bdi', rows 3, 10 (file lines 4, 11): expected a score within [0, 63]" in msg


def test_trial_participant_without_baseline(small_trial):
    df = _table(small_trial)
    post = df[df["visit"] == "post"].index[0]
    pid = df.loc[post, "participant"]
    df = df[~((df["participant"] == pid) & (df["visit"] == "pre"))].reset_index(drop=True)
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "without a baseline ('pre') row" in msg and "row " in msg


def test_too_few_participants_per_arm(small_trial):
    df = _table(small_trial)
    keep = df[df["arm"] == "MBPM"]["participant"].unique()[:2]
    df = df[(df["arm"] != "MBPM") | df["participant"].isin(keep)]
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "arm 'MBPM' has 2 participant(s)" in msg and "at least 3" in msg


def test_table_file_missing(small_trial):
    edit_codebook(small_trial, table="nope.csv")
    (msg,) = _problems(small_trial)
    assert "nope.csv: table file not found" in msg


def test_every_problem_is_reported_at_once(small_trial):
    df = _table(small_trial)
    df.loc[0, "bdi"] = "x"
    df.loc[1, "il6"] = "-3"
    df.loc[2, "arm"] = "other"
    _write(small_trial, df)
    msgs = "\n".join(_problems(small_trial))
    for expected in (
        "column 'bdi', row 1",
        "column 'il6', row 2",
        "column 'arm', row 3 (file line 4): expected one of",
    ):
        assert expected in msgs


def test_many_rows_are_summarised(small_trial):
    df = _table(small_trial)
    df["bdi"] = "x"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "and 34 more" in msg


def test_below_lod_markers_parse(small_trial):
    df = _table(small_trial)
    df.loc[0, "oxytocin"] = "<LOD"
    df.loc[1, "oxytocin"] = "< 3.5"
    _write(small_trial, df)
    frame, _ = build_long_frame(load_codebook(small_trial), lod_method="half")
    ox = frame[frame["outcome"] == "oxytocin"].set_index(["pid", "visit_index"])
    assert ox.loc[(1, 0), "value"] == pytest.approx(4.68 / 2)
    assert ox.loc[(1, 1), "value"] == pytest.approx(3.5 / 2)
    assert ox.loc[(1, 0), "censored"] == 1


def test_numeric_covariate_with_a_typo(small_trial):
    df = _table(small_trial)
    df.loc[3, "age"] = "4O"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'age', row 4 (file line 5): expected a number like the other values" in msg


def test_categorical_covariate_is_accepted(small_trial):
    frame, meta = build_long_frame(load_codebook(small_trial))
    assert meta.covariates == {"age": {"type": "numeric"}, "sex": {"type": "categorical", "levels": ["F", "M"]}}


# ---- identifiers, strict numbers, plausibility, covariates, baseline-only, panels ------------------------------


def _ids(cb_path: Path) -> set[str]:
    return set(_table(cb_path)["participant"])


def _no_identifier(msgs: list[str], ids: set[str]) -> None:
    text = "\n".join(msgs)
    assert not [i for i in ids if i in text]


def test_swapped_identifier_columns_never_echo_identifiers(small_trial):
    ids = _ids(small_trial)
    for swap in ({"participant": "arm", "arm": "participant"}, {"participant": "visit", "visit": "participant"}):
        raw = yaml.safe_load(small_trial.read_text())
        raw["columns"] = {"participant": "participant", "arm": "arm", "visit": "visit", **swap}
        small_trial.write_text(yaml.safe_dump(raw))
        msgs = _problems(small_trial)
        _no_identifier(msgs, ids)
        assert any("found 26 distinct unexpected values (not shown" in m for m in msgs)


def test_identifier_in_an_outcome_or_arm_cell_is_not_shown(small_trial):
    df = _table(small_trial)
    df.loc[4, "bdi"] = df.loc[0, "participant"]
    df.loc[6, "arm"] = df.loc[2, "participant"]
    _write(small_trial, df)
    msgs = _problems(small_trial)
    _no_identifier(msgs, _ids(small_trial))
    assert any("column 'bdi', row 5" in m and "they include participant identifiers" in m for m in msgs)
    assert any("column 'arm', row 7" in m and "they include participant identifiers" in m for m in msgs)


def test_shown_values_are_capped_and_shortened(small_trial):
    df = _table(small_trial)
    df.loc[0, "bdi"] = "a very long remark typed into a score cell"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "'a very long remar...'" in msg and "typed into" not in msg
    df.loc[0:5, "bdi"] = [f"w{i}" for i in range(6)]  # six distinct words: counted, not shown
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "found 6 distinct unexpected values (not shown" in msg and "'w0'" not in msg


@pytest.mark.parametrize("cell", ["1_000", "\u0663", "\uff13", "infinity", "-inf", "Infinity", "NAN", "0x1A", "1e5x"])
def test_strict_numbers_refuse_what_float_accepts(small_trial, cell):
    df = _table(small_trial)
    df.loc[3, "bdi"] = cell
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'bdi', row 4 (file line 5): expected a number or an empty cell" in msg


def test_strict_numbers_accept_plain_numbers_and_missing_markers(small_trial):
    df = _table(small_trial)
    df.loc[0:6, "bdi"] = ["  1e1 ", "+.5", "5.", "1E1", "nan", "NA", "\u00a012\u00a0"]
    df.loc[0, "age"] = " 48.0"
    _write(small_trial, df)
    frame, _ = build_long_frame(load_codebook(small_trial))
    bdi = frame[(frame["outcome"] == "bdi")].set_index(["pid", "visit_index"])["value"]
    assert [bdi.get((1, 0)), bdi.get((1, 1)), bdi.get((2, 0)), bdi.get((2, 1))] == [10.0, 0.5, 5.0, 10.0]
    assert (3, 0) not in bdi.index  # 'nan' is missing


def test_extreme_value_is_refused_but_wide_real_spread_passes(small_trial):
    df = _table(small_trial)
    df.loc[0, "oxytocin"] = "1e5"  # a very high but possible concentration: about 7,000 times the median
    _write(small_trial, df)
    build_long_frame(load_codebook(small_trial))
    df.loc[0, "oxytocin"] = "2e8"
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'oxytocin', row 1 (file line 2): expected a plausible value" in msg and "`range`" in msg


def test_baseline_only_table_is_refused(small_trial):
    df = _table(small_trial)
    _write(small_trial, df[df["visit"] == "pre"])
    (msg,) = _problems(small_trial)
    assert "every row of the trial arms is at the baseline visit 'pre'" in msg
    _write(small_trial, df[(df["arm"] != "MBPM") | (df["visit"] == "pre")])
    (msg,) = _problems(small_trial)
    assert "arm 'MBPM' has no row at a later visit (['post'])" in msg


def test_constant_single_level_and_collinear_covariates(small_trial):
    df = _table(small_trial)
    df["age"] = "50"
    df["sex"] = "F"
    _write(small_trial, df)
    msgs = _problems(small_trial)
    assert any("covariate 'age' has one value" in m for m in msgs)
    assert any("covariate 'sex' has one level" in m for m in msgs)
    df = pd.read_csv(SMALL / "trial.csv", dtype=str, keep_default_na=False)
    df["age_months"] = (df["age"].astype(int) * 12).astype(str)
    _write(small_trial, df)
    edit_codebook(small_trial, covariates=["age", "sex", "age_months"])
    (msg,) = _problems(small_trial)
    assert "covariates 'age' and 'age_months' are collinear" in msg
    # months that carry more than the years are fine
    df["age_months"] = (df["age"].astype(int) * 12 + pd.Series(range(len(df))) % 11).astype(str)
    _write(small_trial, df)
    build_long_frame(load_codebook(small_trial))


def test_categorical_covariate_limits(small_trial):
    df = _table(small_trial)
    df.loc[5, "sex"] = "x" * 2_000_000
    _write(small_trial, df)
    (msg,) = _problems(small_trial)
    assert "column 'sex', row 6 (file line 7): expected a category label of at most 100 characters" in msg
    assert len(msg) < 1000


def test_min_per_arm_is_a_count_of_participants_with_a_baseline_row(small_trial):
    msgs = _problems(small_trial, min_per_arm=11)
    assert any("arm 'MBPM' has 10 participant(s) with a baseline row; expected at least 11" in m for m in msgs)
    assert any("arm 'waitlist' has 10 participant(s)" in m for m in msgs)
    build_long_frame(load_codebook(small_trial), min_per_arm=10)


def test_rows_and_file_lines_stay_right_around_blank_lines(small_trial):
    table = small_trial.parent / "trial.csv"
    lines = table.read_text().splitlines(keepends=True)
    table.write_text("".join([*lines[:3], "\n", *lines[3:6], "\n\n", *lines[6:]]))
    df = read_table(table)
    assert len(df) == 44 and list(file_lines(df)[:6]) == [2, 3, 5, 6, 7, 10]
    edited = lines[5].rsplit(",", 1)[0] + ",twelve\n"  # data row 5
    table.write_text("".join([*lines[:3], "\n", lines[3], lines[4], edited, "\n\n", *lines[6:]]))
    (msg,) = _problems(small_trial)
    assert "column 'bdi', row 5 (file line 7)" in msg


def test_header_only_and_empty_tables(small_trial):
    table = small_trial.parent / "trial.csv"
    header = table.read_text().splitlines(keepends=True)[0]
    table.write_text(header)
    (msg,) = _problems(small_trial)
    assert "the table has a header line but no data rows" in msg
    table.write_bytes(b"")
    (msg,) = _problems(small_trial)
    assert "the file is empty (0 bytes)" in msg


@pytest.mark.parametrize(
    "content,expected",
    [("", "the codebook is empty"), ("- a\n- b\n", "the codebook is a list"), ("42\n", "a single value")],
)
def test_codebook_that_is_not_a_mapping(small_trial, content, expected):
    small_trial.write_text(content)
    with pytest.raises(ValidationError) as err:
        load_codebook(small_trial)
    (msg,) = err.value.problems
    assert msg.startswith(f"{small_trial}: ") and expected in msg


def test_workflow_reads_the_codebook_with_pnitrial(tmp_path):
    """common.smk uses pnitrial.codebook: a bad codebook names its file and key, not 'config file'."""
    shutil.copytree(
        ROOT / ".test", tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake")
    )
    cb = tmp_path / "data" / "dataset.yaml"
    raw = yaml.safe_load(cb.read_text())
    raw["outcomes"]["bdi"]["transform"] = "cube"
    cb.write_text(yaml.safe_dump(raw))
    res = run(tmp_path, "-n")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "data/dataset.yaml: key 'outcomes/bdi/transform': expected one of ['none', 'log'], found 'cube'" in out
    assert "config file" not in out.lower()
    cb.write_text("- table\n- columns\n")
    res = run(tmp_path, "-n")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "data/dataset.yaml: the codebook is a list" in out
    assert "TypeError" not in out


# ---- panels ------------------------------------------------------------------------------------------------------


@pytest.fixture
def panel_trial(tmp_path: Path) -> Path:
    dst = tmp_path / "panel"
    shutil.copytree(ROOT / ".test" / "panel", dst)
    return dst / "dataset.yaml"


def test_panel_only_codebook_loads_and_validates(panel_trial):
    raw = yaml.safe_load(panel_trial.read_text())
    del raw["outcomes"]
    panel_trial.write_text(yaml.safe_dump(raw))
    cb = load_codebook(panel_trial)
    assert cb.outcomes == () and cb.panel is not None
    validate_table(cb, read_table(cb.table))
    rows, values, meta = build_panel_frame(cb)
    assert values.shape == (44, 120) and len(meta["analytes"]) == 120
    del raw["panel"]
    panel_trial.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="expected the key 'outcomes'.* or 'panel'"):
        load_codebook(panel_trial)


def test_panel_repeating_trial_columns_and_ignored_columns_are_accepted(panel_trial):
    panel = panel_trial.parent / "panel.csv"
    trial = pd.read_csv(panel_trial.parent / "trial.csv", dtype=str, keep_default_na=False)
    df = pd.read_csv(panel, dtype=str, keep_default_na=False)
    ref = trial.set_index(["participant", "visit"])
    keys = list(zip(df["participant"], df["visit"], strict=True))
    df.insert(2, "arm", [ref.loc[k, "arm"] for k in keys])
    df.insert(3, "age", [ref.loc[k, "age"] + ".0" for k in keys])  # 48.0 agrees with 48
    df.insert(4, "plate", [f"PL-{i % 2}" for i in range(len(df))])
    df.insert(5, "qc", "PASS")
    df.to_csv(panel, index=False)
    edit_codebook(panel_trial, panel=dict(yaml.safe_load(panel_trial.read_text())["panel"], ignore=["plate", "qc"]))
    before = hashlib.sha256(panel.read_bytes()).hexdigest()
    cb = load_codebook(panel_trial)
    rows, values, meta = build_panel_frame(cb)
    assert hashlib.sha256(panel.read_bytes()).hexdigest() == before
    assert values.shape == (44, 120) and meta["analytes"][0] == "P0001"
    assert analyte_count(cb) == 120
    df.loc[7, "age"] = "61"
    df.to_csv(panel, index=False)
    (msg,) = _panel_problems(panel_trial)
    assert "panel.csv: column 'age', row 8 (file line 9): expected the same value as the trial table trial.csv" in msg


def test_panel_number_checks_are_strict(panel_trial):
    panel = panel_trial.parent / "panel.csv"
    df = pd.read_csv(panel, dtype=str, keep_default_na=False)
    df.loc[2, "P0004"] = "\u0663.5"
    df.loc[3, "P0005"] = "inf"
    df.loc[4, "P0006"] = "1e999"
    df.to_csv(panel, index=False)
    msgs = _panel_problems(panel_trial)
    assert any("column 'P0004', row 3" in m and "only the ASCII digits" in m for m in msgs)
    assert any("column 'P0005', row 4" in m and "infinity is not a measurement" in m for m in msgs)
    assert any("column 'P0006', row 5" in m and "expected a finite number" in m for m in msgs)


def _panel_problems(cb_path: Path) -> list[str]:
    with pytest.raises(ValidationError) as err:
        build_panel_frame(load_codebook(cb_path))
    return err.value.problems
