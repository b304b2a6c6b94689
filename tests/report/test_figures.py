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


def test_diagnostic_legend_has_the_colours_of_the_bars_and_names_the_log_scale():
    """Issue 16: the legend showed both arms in the default blue while the bars were green and purple."""
    import numpy as np
    from matplotlib.colors import to_hex

    from pnitrial.report.figures.diagnostics import diagnostic_panels

    rng = np.random.default_rng(1)
    arms = np.array(["intervention", "control"] * 10)
    fig = diagnostic_panels(
        "IL-6",
        rng.normal(size=40),
        rng.normal(size=40),
        rng.normal(size=(20, 1)),
        rng.random(20),
        arms,
        threshold=0.2,
        scale="log",
    )
    ax = fig.axes[3]
    bar_colours = {to_hex(p.get_facecolor()) for p in ax.patches}
    legend = {
        t.get_text(): to_hex(h.get_facecolor())
        for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)
    }
    assert set(legend) == {"intervention", "control"} and set(legend.values()) == bar_colours
    assert legend["intervention"] == style.ARM_COLOURS["intervention"]
    assert fig.axes[1].get_xlabel() == "fitted value (log scale)" and "log scale" in fig.axes[0].get_ylabel()
