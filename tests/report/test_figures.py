"""Figures repeat byte for byte and carry no participant identifier."""

from __future__ import annotations

import pandas as pd
from conftest import DEMO

from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.report.figures import style, trial
from pnitrial.report.tables import effects_table, emmeans_table


def _render(tmp_path, name):
    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    res = [analyse_outcome(frame, meta, k, AnalysisOptions()).__dict__ for k in ("oxytocin", "bdi")]
    meta = meta.with_outcomes(tuple(o for o in meta.outcomes if o.key in ("oxytocin", "bdi")))
    em = emmeans_table(res, meta)
    paths = style.save(trial.trajectory(frame, meta, "oxytocin", em), tmp_path / f"{name}_traj", ("png", "pdf", "svg"))
    paths += style.save(
        trial.forest(effects_table(res, "bh"), meta), tmp_path / f"{name}_forest", ("png", "pdf", "svg")
    )
    return paths


def test_figures_are_byte_identical_between_renders(tmp_path):
    first = _render(tmp_path, "a")
    second = _render(tmp_path, "b")
    for p, q in zip(first, second, strict=True):
        assert open(p, "rb").read() == open(q, "rb").read(), p


def test_no_identifier_or_timestamp_in_figures(tmp_path):
    ids = set(pd.read_csv(DEMO / "trial.csv")["participant"])
    for p in _render(tmp_path, "c"):
        data = open(p, "rb").read()
        assert not any(i.encode() in data for i in ids), p
        assert b"CreationDate" not in data and b"<dc:date>" not in data
