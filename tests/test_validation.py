"""One test per class of bad input: a clear message naming file, column and rows; input untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import edit_codebook

from pnitrial.codebook import load_codebook
from pnitrial.errors import ValidationError
from pnitrial.longframe import build_long_frame


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
    assert meta["participants"] == {"intervention": 10, "control": 10, "healthy": 6}


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
    assert meta["covariates"] == {"age": {"type": "numeric"}, "sex": {"type": "categorical", "levels": ["F", "M"]}}
