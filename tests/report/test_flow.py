"""CONSORT participant flow: exact counts, every participant accounted for, a readable diagram, the codebook key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.patches
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, compile_latex, edit_codebook

from pnitrial import steps
from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import Outcome, load_codebook
from pnitrial.data.examples import toy_trial
from pnitrial.data.longframe import build_long_frame, write_frame
from pnitrial.data.simulate import write_demo
from pnitrial.data.table import MISSING
from pnitrial.data.trial import Trial
from pnitrial.errors import ValidationError
from pnitrial.report.figures.flow import flow_diagram
from pnitrial.report.figures.style import layout_problems, plt, save
from pnitrial.report.flow import COLUMNS, flow_readable, flow_table
from pnitrial.report.render import write_all
from pnitrial.report.tables import fits_table

BTHEB = ROOT / "tests" / "reference" / "cases" / "btheb" / "dataset.yaml"


def _hand_made() -> tuple[pd.DataFrame, Trial, pd.DataFrame]:
    """Three visits, two biomarkers and one score; dropout, a participant without any value, healthy controls."""
    outcomes = (
        Outcome("crp", "crp", "CRP", "mg/L", "biomarker", "log", lod=0.1),
        Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log"),
        Outcome("pain", "pain", "Pain", "score", "clinical", "none"),
    )
    arms = {"intervention": "MBPM", "control": "Wait-list", "healthy": "HC"}
    # control participant 8 is in the table but has no value at all; healthy only at baseline
    meta = Trial("hand", arms, ("pre", "mid", "post"), outcomes=outcomes, enrolled=20)
    meta = dataclasses.replace(meta, participants={"intervention": 3, "control": 3, "healthy": 2})
    role = {1: "intervention", 2: "intervention", 3: "intervention", 4: "control", 5: "control", 6: "healthy"}
    role[7] = "healthy"
    values = [  # pid, visit, outcome, value, censored
        *[(1, v, o, 1.0, 0) for v in ("pre", "mid", "post") for o in ("crp", "il6", "pain")],
        *[(2, "pre", o, 1.0, 0) for o in ("crp", "il6", "pain")],
        (2, "mid", "crp", 1.0, 0),  # biomarker measured, clinical missing; then lost
        *[(3, "pre", o, 1.0, 0) for o in ("crp", "il6", "pain")],
        (3, "mid", "pain", 2.0, 0),
        (3, "post", "crp", 0.07, 1),  # below the limit of detection: measured
        *[(4, v, o, 1.0, 0) for v in ("pre", "mid", "post") for o in ("crp", "il6", "pain")],
        *[(5, "pre", o, 1.0, 0) for o in ("crp", "il6", "pain")],
        (5, "post", "pain", 3.0, 0),
        (5, "post", "crp", np.nan, 0),  # a missing value is not a measurement
        *[(6, "pre", o, 1.0, 0) for o in ("crp", "il6", "pain")],
        (7, "pre", "pain", 1.0, 0),
    ]
    frame = pd.DataFrame(values, columns=["pid", "visit", "outcome", "value", "censored"])
    frame["role"] = frame["pid"].map(role)
    frame["visit_index"] = frame["visit"].map({"pre": 0, "mid": 1, "post": 2})
    fits = pd.DataFrame(
        [
            ("crp", "clda", "", 3, 2, "ok"),
            ("crp", "clda_censored", "", 3, 2, "ok"),
            ("il6", "clda", "", 2, 2, "singular"),
            ("pain", "clda", "", 3, 2, "ok"),
            ("crp", "ancova", "post", 2, 1, "ok"),
            ("il6", "ancova", "post", np.nan, np.nan, "failed"),
            ("pain", "ancova", "post", 1, 2, "ok"),
        ],
        columns=["outcome", "estimand", "visit", "n_intervention", "n_control", "status"],
    )
    fits.loc[fits["visit"] == "", "visit"] = np.nan  # as fits.csv reads back
    return frame, meta, fits


def _cells(table: pd.DataFrame, stage: str) -> dict[tuple, int]:
    rows = table[table["stage"] == stage]
    return {(r.family, r.visit, r.arm): int(r.n) for r in rows.itertuples()}


def test_exact_counts_on_a_hand_made_frame():
    frame, meta, fits = _hand_made()
    table = flow_table(frame, meta, fits)
    assert list(table.columns) == COLUMNS
    head = table[~table["stage"].isin(["measured", "missing", "analysed"])]
    assert [(r.stage, r.arm, int(r.n)) for r in head.itertuples()] == [
        ("enrolled", "all", 20),
        ("not_randomised", "all", 14),
        ("randomised", "MBPM", 3),
        ("randomised", "Wait-list", 3),
        ("healthy_enrolled", "HC", 2),
    ]
    measured = _cells(table, "measured")
    expected = {
        ("biomarker", "pre", "MBPM"): 3,
        ("biomarker", "pre", "Wait-list"): 2,
        ("biomarker", "pre", "HC"): 1,
        ("clinical", "pre", "MBPM"): 3,
        ("clinical", "pre", "Wait-list"): 2,
        ("clinical", "pre", "HC"): 2,
        ("biomarker", "mid", "MBPM"): 2,
        ("biomarker", "mid", "Wait-list"): 1,
        ("clinical", "mid", "MBPM"): 2,
        ("clinical", "mid", "Wait-list"): 1,
        ("biomarker", "post", "MBPM"): 2,
        ("biomarker", "post", "Wait-list"): 1,
        ("clinical", "post", "MBPM"): 1,
        ("clinical", "post", "Wait-list"): 2,
    }
    assert measured == expected  # healthy controls only where they have values (baseline)
    missing = _cells(table, "missing")
    total = {"MBPM": 3, "Wait-list": 3, "HC": 2}
    assert missing == {k: total[k[2]] - n for k, n in expected.items()}
    analysed = table[table["stage"] == "analysed"]
    got = {(r.family, r.estimand, r.visit, r.arm): (r.n, r.n_max, r.primary, r.note) for r in analysed.itertuples()}
    assert got == {
        ("biomarker", "clda", "", "MBPM"): (2, 3, True, "2 outcomes; primary for 1 of 2"),
        ("biomarker", "clda", "", "Wait-list"): (2, 2, True, "2 outcomes; primary for 1 of 2"),
        ("biomarker", "clda_censored", "", "MBPM"): (3, 3, True, "1 outcome; primary"),
        ("biomarker", "clda_censored", "", "Wait-list"): (2, 2, True, "1 outcome; primary"),
        ("biomarker", "ancova", "post", "MBPM"): (2, 2, False, "2 outcomes; 1 not estimated"),
        ("biomarker", "ancova", "post", "Wait-list"): (1, 1, False, "2 outcomes; 1 not estimated"),
        ("clinical", "clda", "", "MBPM"): (3, 3, True, "1 outcome; primary"),
        ("clinical", "clda", "", "Wait-list"): (2, 2, True, "1 outcome; primary"),
        ("clinical", "ancova", "post", "MBPM"): (1, 1, False, "1 outcome"),
        ("clinical", "ancova", "post", "Wait-list"): (2, 2, False, "1 outcome"),
    }
    # the primary estimand comes first within each family
    assert list(analysed.loc[analysed["family"] == "biomarker", "estimand"].drop_duplicates()) == [
        "clda",
        "clda_censored",
        "ancova",
    ]
    readable = flow_readable(table, meta)
    line = readable[(readable["Stage"] == "Analysed") & (readable["Analysis"] == "cLDA (primary)")].iloc[0]
    assert (line["MBPM"], line["Wait-list"], line["Total"]) == ("2\u20133", "2", "")
    line = readable[(readable["Stage"] == "Missing") & (readable["Visit"] == "post")].iloc[0]
    assert (line["MBPM"], line["Wait-list"], line["Total"], line["HC"]) == ("1", "2", "3", "")


def test_without_enrolment_fits_or_healthy_group():
    frame, meta = toy_trial(n=8)
    table = flow_table(frame, meta)  # participants counted from the frame (toy trials carry none)
    assert set(table["stage"]) == {"randomised", "measured", "missing"}
    assert table.loc[table["stage"] == "randomised", "n"].tolist() == [4, 4]
    assert table.loc[table["stage"] == "missing", "n"].sum() == 0


def test_more_participants_in_the_frame_than_randomised_is_refused():
    frame, meta, _ = _hand_made()
    meta = dataclasses.replace(meta, participants={"intervention": 2, "control": 3, "healthy": 2})
    with pytest.raises(ValueError, match="3 intervention participants, the trial only 2"):
        flow_table(frame, meta)


def _accounted_for(table: pd.DataFrame) -> None:
    """randomised (or healthy enrolled) = measured + missing for every family, visit and arm."""
    groups = table[table["stage"].isin(["randomised", "healthy_enrolled"])].set_index("arm")["n"]
    seen = table[table["stage"] == "measured"].set_index(["family", "visit", "arm"])["n"]
    gone = table[table["stage"] == "missing"].set_index(["family", "visit", "arm"])["n"]
    assert seen.index.equals(gone.index) and len(seen)
    assert (gone >= 0).all()
    total = seen + gone
    assert (total.to_numpy() == groups.loc[total.index.get_level_values("arm")].to_numpy()).all()


def _raw_measured(codebook: Path) -> dict[tuple, int]:
    """Participants with a non-empty cell of an outcome of the family, per family, visit and arm: from the table."""
    cb = load_codebook(codebook)
    raw = pd.read_csv(cb.table, dtype=str, keep_default_na=False)
    out = {}
    for family in dict.fromkeys(o.family for o in cb.outcomes):
        cols = [o.column for o in cb.outcomes if o.family == family]
        has = raw[cols].apply(lambda c: ~c.str.strip().isin(MISSING)).any(axis=1)
        for (visit, arm), n in raw[has].groupby([cb.visit, cb.arm])[cb.participant].nunique().items():
            out[(family, visit, arm)] = int(n)
    return out


def test_every_demo_participant_is_accounted_for(tmp_path):
    paths = write_demo(tmp_path, seed=20261123)
    frame, meta = build_long_frame(load_codebook(paths[1]))
    table = flow_table(frame, meta)
    _accounted_for(table)
    measured = _cells(table, "measured")
    assert measured == _raw_measured(paths[1])
    assert sum(n for (_, v, _), n in _cells(table, "missing").items() if v == meta.later_visits[-1]) > 0


@pytest.fixture(scope="module")
def btheb():
    frame, meta = build_long_frame(load_codebook(BTHEB))
    fits = fits_table([{"fits": analyse_outcome(frame, meta, "bdi", AnalysisOptions()).fits}])
    return frame, meta, fits


def test_btheb_real_dropout_over_five_visits(btheb):
    frame, meta, fits = btheb
    table = flow_table(frame, meta, fits)
    _accounted_for(table)
    measured = _cells(table, "measured")
    assert measured == _raw_measured(BTHEB)
    # HSAUR3::BtheB: 52 BtheB and 48 TAU patients, half of them without a BDI at 8 months
    assert _cells(table, "randomised") == {("", "", "BtheB"): 52, ("", "", "TAU"): 48}
    by_visit = {v: (measured[("depression", v, "BtheB")], measured[("depression", v, "TAU")]) for v in meta.visits}
    assert by_visit == {"pre": (52, 48), "m2": (52, 45), "m3": (37, 36), "m5": (29, 29), "m8": (27, 25)}
    analysed = table[table["stage"] == "analysed"].set_index(["estimand", "visit", "arm"])["n"]
    assert analysed[("clda", "", "BtheB")] == 52 and analysed[("clda", "", "TAU")] == 48
    assert analysed[("ancova", "m8", "BtheB")] == 27 and analysed[("ancova", "m8", "TAU")] == 25


def _box_problems(fig) -> list[str]:
    """Texts outside their box, boxes overlapping each other or leaving the canvas, as drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    patches = {p.get_gid(): p.get_window_extent(renderer) for p in ax.patches if p.get_gid()}
    canvas = fig.bbox
    problems = []
    for t in ax.texts:
        if not t.get_text():
            continue
        box, ext = patches.get(t.get_gid()), t.get_window_extent(renderer)
        if box is None:
            problems.append(f"{t.get_text()!r} has no box")
        elif ext.x0 < box.x0 or ext.x1 > box.x1 or ext.y0 < box.y0 or ext.y1 > box.y1:
            problems.append(f"{t.get_text()!r} leaves its box {t.get_gid()}")
    names = list(patches)
    for i, a in enumerate(names):
        p = patches[a]
        if p.x0 < canvas.x0 or p.y0 < canvas.y0 or p.x1 > canvas.x1 or p.y1 > canvas.y1:
            problems.append(f"box {a} leaves the canvas")
        for b in names[i + 1 :]:
            q = patches[b]
            if min(p.x1, q.x1) > max(p.x0, q.x0) and min(p.y1, q.y1) > max(p.y0, q.y0):
                problems.append(f"box {a} overlaps box {b}")
    return problems


def _many_visits(n_later: int) -> tuple[pd.DataFrame, Trial]:
    visits = ("baseline", *(f"week {i}" for i in range(1, n_later + 1)))
    frame, meta = toy_trial(n=30, visits=visits)
    return frame[~((frame["pid"] % 4 == 1) & (frame["visit_index"] > n_later // 2))], meta


@pytest.mark.parametrize("case", ["hand", "btheb", "one_later_visit", "twelve_visits"])
@pytest.mark.parametrize("dpi", [72, 150])
def test_diagram_texts_stay_in_their_boxes(case, dpi, btheb):
    if case == "hand":
        frame, meta, fits = _hand_made()
    elif case == "btheb":
        frame, meta, fits = btheb
        meta = dataclasses.replace(meta, enrolled=167)
    else:
        frame, meta = _many_visits(1 if case == "one_later_visit" else 12)
        fits = None
    table = flow_table(frame, meta, fits)
    fig = flow_diagram(table, meta)
    fig.set_dpi(dpi)  # as style.save draws it
    try:
        assert _box_problems(fig) == []
        assert layout_problems(fig) == []
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert any(t.startswith("Randomised (n = ") for t in texts)
        assert ("Assessed for eligibility (n = 167)" in texts) == (case == "btheb")
        assert any(t.startswith("Healthy controls") for t in texts) == (case == "hand")
        rows = [t for t in texts if t.startswith("week ")]
        assert len(rows) == {"twelve_visits": 24, "one_later_visit": 2}.get(case, 0)
        stages = [p for p in fig.axes[0].patches if isinstance(p, matplotlib.patches.FancyBboxPatch)]
        assert {p.get_gid() for p in stages} >= {"stage:Allocation", "stage:Follow-up", "stage:Analysis"}
    finally:
        plt.close(fig)


def test_diagram_from_the_csv_as_read_back(tmp_path):
    frame, meta, fits = _hand_made()
    flow_table(frame, meta, fits).to_csv(tmp_path / "flow.csv", index=False)
    again = pd.read_csv(tmp_path / "flow.csv", dtype={"visit": str}, keep_default_na=False)
    again["n"] = pd.to_numeric(again["n"])
    again["n_max"] = pd.to_numeric(again["n_max"])
    fig = flow_diagram(again, meta)
    texts = [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    assert "biomarker: cLDA, censored" in texts and "2\u20133" in texts


def test_flow_tex_compiles(tmp_path):
    frame, meta, fits = _hand_made()
    meta = dataclasses.replace(meta, arms={"intervention": "MBPM & co", "control": "Wait_list", "healthy": "HC"})
    table = flow_table(frame, meta, fits)
    paths = write_all(flow_readable(table, meta), str(tmp_path / "flow"), "Participant flow (CONSORT 2010 item 13)")
    tex = Path(paths[1]).read_text()
    assert r"\toprule" in tex and r"MBPM \& co" in tex and r"Wait\_list" in tex and r"2\textendash{}3" in tex
    res = compile_latex([Path(paths[1])], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]


def test_step_writes_every_output_without_identifiers(tmp_path, btheb):
    frame, meta, fits = btheb
    write_frame(frame, meta, tmp_path / "long.csv", tmp_path / "meta.json")
    fits.to_csv(tmp_path / "fits.csv", index=False)
    out = {"flow": str(tmp_path / "flow.csv"), "flow_md": str(tmp_path / "flow.md")}
    steps.participant_flow(
        str(tmp_path / "long.csv"),
        str(tmp_path / "meta.json"),
        str(tmp_path / "fits.csv"),
        "clda",
        out,
        str(tmp_path / "figure"),
        ("png", "pdf"),
        72,
    )
    written = {p.name for p in tmp_path.iterdir()}
    assert {"flow.csv", "flow.md", "flow.tex", "flow.html", "figure.png", "figure.pdf"} <= written
    ids = set(pd.read_csv(load_codebook(BTHEB).table, dtype=str)["participant"])
    for name in ("flow.csv", "flow.md", "flow.tex", "flow.html"):
        text = (tmp_path / name).read_text()
        assert not [i for i in ids if i in text], name
    table = pd.read_csv(tmp_path / "flow.csv", keep_default_na=False)
    assert list(table.columns) == COLUMNS and "pid" not in table.columns


# The codebook key `enrolled`: a whole number of at least 1, no fewer than the participants randomised.


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "key 'enrolled': expected a number of at least 1, found 0"),
        (-5, "key 'enrolled': expected a number of at least 1, found -5"),
        (40.5, "key 'enrolled': expected a whole number, found the number 40.5"),
        ("many", "key 'enrolled': expected a whole number, found the text 'many'"),
        (True, "key 'enrolled': expected a whole number, found the boolean True"),
    ],
)
def test_enrolled_must_be_a_positive_whole_number(small_trial, value, message):
    edit_codebook(small_trial, enrolled=value)
    with pytest.raises(ValidationError) as err:
        load_codebook(small_trial)
    assert err.value.problems == [f"{small_trial}: {message}"]


def test_enrolled_at_least_the_number_randomised(small_trial):
    raw = pd.read_csv(small_trial.parent / "trial.csv", dtype=str)
    cb = yaml.safe_load(small_trial.read_text())
    trial_arms = [cb["arms"]["intervention"], cb["arms"]["control"]]
    randomised = raw.loc[raw["arm"].isin(trial_arms), "participant"].nunique()
    edit_codebook(small_trial, enrolled=randomised - 1)
    with pytest.raises(ValidationError) as err:
        build_long_frame(load_codebook(small_trial))
    expected = (
        f"{small_trial}: key 'enrolled': expected at least the {randomised} participants randomised in trial.csv "
        f"(arms '{trial_arms[0]}' and '{trial_arms[1]}'), found {randomised - 1}"
    )
    assert err.value.problems == [expected]
    edit_codebook(small_trial, enrolled=randomised)  # all enrolled were randomised: valid
    _, meta = build_long_frame(load_codebook(small_trial))
    assert meta.enrolled == randomised
    assert Trial.from_json(meta.to_json()) == meta and '"enrolled"' in meta.to_json()


def test_meta_json_without_enrolled_has_no_such_key(small_trial):
    _, meta = build_long_frame(load_codebook(small_trial))
    assert meta.enrolled is None and "enrolled" not in meta.to_json()
    assert Trial.from_json(meta.to_json()).enrolled is None


def test_diagram_bytes_repeat(tmp_path):
    frame, meta, fits = _hand_made()
    table = flow_table(frame, meta, fits)
    first = save(flow_diagram(table, meta), tmp_path / "a", ("png", "pdf"), 72)
    second = save(flow_diagram(table, meta), tmp_path / "b", ("png", "pdf"), 72)
    assert [Path(p).read_bytes() for p in first] == [Path(p).read_bytes() for p in second]
