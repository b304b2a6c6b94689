"""Figures repeat byte for byte and carry no participant identifier."""

from __future__ import annotations

import functools

import matplotlib.collections
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from conftest import DEMO

from pnitrial.analyses.effect_sizes import effect_sizes
from pnitrial.analyses.estimands import AnalysisOptions, analyse_outcome
from pnitrial.data.codebook import load_codebook
from pnitrial.data.longframe import build_long_frame
from pnitrial.report.figures import style, trial
from pnitrial.report.figures.associations import association_heatmap
from pnitrial.report.figures.sensitivity import sensitivity_forest
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
    bar_colours = {to_hex(c) for c in ax.collections[0].get_facecolors()}  # the bars are one collection
    legend = {
        t.get_text(): to_hex(h.get_facecolor())
        for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)
    }
    assert set(legend) == {"intervention", "control"} and set(legend.values()) == bar_colours
    assert legend["intervention"] == style.ARM_COLOURS["intervention"]
    assert fig.axes[1].get_xlabel() == "fitted value (log scale)" and "log scale" in fig.axes[0].get_ylabel()


KEYS = ("oxytocin", "il6", "bdi", "maia")  # censored, log, lower is better, higher is better


@functools.cache
def _demo():
    """The demo trial's tables for four outcomes, computed in-process."""
    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    res = [analyse_outcome(frame, meta, k, AnalysisOptions()).__dict__ for k in KEYS]
    meta = meta.with_outcomes(tuple(o for o in meta.outcomes if o.key in KEYS))
    eff = effects_table(res, "bh")
    return frame, meta, eff, emmeans_table(res, meta), effect_sizes(eff, None, frame, meta)


def _saved(fig, tmp_path):
    """Save as the workflow does (the draw that places every text), then list its layout problems."""
    fig.savefig(tmp_path / "f.png", dpi=100)
    problems = style.layout_problems(fig)
    return fig, problems


def test_forest_scales_each_outcome_and_says_which_arm_it_favours(tmp_path):
    frame, meta, eff, em, sizes = _demo()
    fig, problems = _saved(trial.forest(eff, meta, sizes), tmp_path)
    assert problems == []
    log_ax, lower_ax, higher_ax = fig.axes
    assert [t.get_text() for t in log_ax.get_yticklabels()] == ["Salivary oxytocin", "Salivary IL-6"]
    sides = {
        ax: [t.get_text() for t in ax.texts if "\u2192" in t.get_text() or "\u2190" in t.get_text()] for ax in fig.axes
    }
    assert sides[log_ax] == ["\u2190 lower with MBPM", "higher with MBPM \u2192"]
    assert sides[lower_ax] == ["\u2190 favours MBPM", "favours waitlist \u2192"]  # BDI: lower is better
    assert sides[higher_ax] == ["\u2190 favours waitlist", "favours MBPM \u2192"]  # MAIA: higher is better
    # scores on the standardised scale, their raw effect printed in units
    prim = eff[(eff["outcome"] == "bdi") & eff["primary"] & (eff["scale"] == "model")].iloc[0]
    sd = sizes.loc[sizes["outcome"] == "bdi", "denominator_sd"].iloc[0]
    ci = [ln for ln in lower_ax.lines if len(ln.get_xdata()) == 2 and ln.get_color() == "black"][0]
    assert ci.get_xdata() == pytest.approx([prim["ci_low"] / sd, prim["ci_high"] / sd])
    assert any(t.get_text().endswith(" score") and t.get_text().startswith("\u2212") for t in lower_ax.texts)
    # legend: one hollow shape per estimand, and the fill explained once
    handles = fig.legends[0].legend_handles
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[-1] == "filled: FDR-adjusted p < 0.05"
    assert all(h.get_markerfacecolor() == "white" for h in handles[:-1])
    assert len({h.get_marker() for h in handles[:-1]}) == len(handles) - 1


def test_trajectory_legend_has_the_arm_colours_and_shapes_and_means_of_the_primary_model(tmp_path):
    frame, meta, eff, em, _ = _demo()
    for key in KEYS:
        fig, problems = _saved(trial.trajectory(frame, meta, key, em), tmp_path)
        assert problems == [], key
        ax = fig.axes[0]
        assert ax.get_legend() is not None
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            role = next((r for r in ("intervention", "control") if text.startswith(meta.arms[r])), None)
            if role is None:
                continue
            line = handle[0] if isinstance(handle, tuple) else handle
            assert matplotlib.colors.same_color(line.get_color(), style.ARM_COLOURS[role]), (key, role)
            assert line.get_marker() == trial.ARM_MARKERS[role]
        primary = eff.loc[(eff["outcome"] == key) & eff["primary"], "estimand"].iloc[0]
        assert ax.get_title(loc="left") == f"Means: {trial.ESTIMAND_STYLE[primary][0]} (primary)"
        # the cLDA shares one baseline mean between arms, and so does the figure
        base = em[(em["outcome"] == key) & (em["estimand"] == primary) & (em["visit"] == "pre")]
        assert base["response"].nunique() == 1


def test_trajectory_draws_values_below_the_lod_hollow_at_the_lod(tmp_path):
    frame, meta, _, em, _ = _demo()
    sub = frame[
        (frame["outcome"] == "oxytocin") & (frame["censored"] == 1) & frame["role"].isin(["intervention", "control"])
    ]
    assert len(sub) > 0
    fig, _ = _saved(trial.trajectory(frame, meta, "oxytocin", em), tmp_path)
    ax = fig.axes[0]
    lod = float(sub["lod"].iloc[0])
    hollow = [ln for ln in ax.lines if ln.get_markerfacecolor() == "white"]
    assert sum(len(ln.get_ydata()) for ln in hollow) == len(sub)
    assert all(np.allclose(ln.get_ydata(), lod) for ln in hollow)
    dashed = [ln for ln in ax.lines if ln.get_label().startswith("LOD")]
    assert len(dashed) == 1 and np.allclose(dashed[0].get_ydata(), lod)


def test_sensitivity_forest_shows_ratios_with_apa_p_and_labelled_ticks(tmp_path):
    frame, meta, eff, _, _ = _demo()
    table = pd.DataFrame(
        {
            "outcome": "oxytocin",
            "analysis": ["primary", "complete cases"],
            "estimate": [0.2524, 0.2527],
            "ci_low": [0.0831, 0.0837],
            "ci_high": [0.4217, 0.4218],
            "p": [0.00347, 0.00338],
            "status": "ok",
        }
    )
    fig, problems = _saved(sensitivity_forest(table, meta, "oxytocin"), tmp_path)
    assert problems == []
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.texts][0] == "1.29 [1.09, 1.52], p = .003"
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(shown) >= 3  # a narrow ratio axis is still labelled


def test_association_heatmap_of_a_small_codebook_fits_its_titles_and_colour_bar(tmp_path):
    _, meta, _, _, _ = _demo()
    table = pd.DataFrame(
        {
            "analysis": np.repeat(["rm_corr", "change_pearson", "change_spearman"], 2),
            "biomarker": ["oxytocin", "il6"] * 3,
            "clinical": "bdi",
            "r": [0.03, 0.0, -0.1, 0.19, -0.02, 0.21],
            "p_fdr": 0.9,
        }
    )
    fig, problems = _saved(association_heatmap(table, meta), tmp_path)
    assert problems == []
    assert fig.get_size_inches()[0] >= 5.5


def test_layout_check_names_overlapping_texts_in_the_log(tmp_path, caplog):
    fig, ax = style.plt.subplots(figsize=(2, 1))
    ax.text(0.5, 0.5, "IL-6 ratio")
    ax.text(0.55, 0.5, "TNF-\u03b1 ratio")
    with caplog.at_level("WARNING", logger="pnitrial"):
        style.save(fig, tmp_path / "crowded", ("png",), 50)
    assert "figure crowded: 'IL-6 ratio' overlaps 'TNF-\u03b1 ratio'" in caplog.text


def test_tipping_point_figure_merges_coinciding_strategies_and_titles_the_tipping_point(tmp_path):
    from pnitrial.analyses.reference_based import missing_data_analysis
    from pnitrial.report.figures.missing_data import tipping_point_figure

    frame, meta = build_long_frame(load_codebook(DEMO / "dataset.yaml"))
    meta = meta.with_outcomes(tuple(o for o in meta.outcomes if o.key in ("il6", "bdi")))
    effects, tipping = missing_data_analysis(frame, meta, delta_sd=(0.0, 0.5, 1.0))
    # one post-baseline visit: JR, CR and CIR impute the same values, so they are one line
    fig, problems = _saved(tipping_point_figure(effects[effects["outcome"] == "il6"], tipping, meta), tmp_path)
    assert problems == []
    assert len([ax for ax in fig.axes if ax.axison]) == 1  # the per-outcome figure: one panel
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["MAR", "JR = CR = CIR"]
    tip = tipping[(tipping["outcome"] == "il6") & (tipping["strategy"] == "MAR")]["tipping_delta_sd"].iloc[0]
    assert fig.axes[0].get_title() == f"Salivary IL-6 (post)\nMAR tips at \u03b4 = {tip:.2f} SD"
    fig, problems = _saved(tipping_point_figure(effects, tipping, meta), tmp_path)
    assert problems == [] and len([ax for ax in fig.axes if ax.axison]) == 2


def test_trajectory_of_a_large_trial_draws_boxes_per_visit_not_thousands_of_lines(tmp_path):
    from pnitrial.data.examples import toy_trial

    frame, meta = toy_trial(n=2 * trial.MANY_PARTICIPANTS + 2, seed=3)
    res = [analyse_outcome(frame, meta, "pain", AnalysisOptions()).__dict__]
    fig, problems = _saved(trial.trajectory(frame, meta, "pain", emmeans_table(res, meta)), tmp_path)
    assert problems == []
    ax = fig.axes[0]

    def participant_lines(ax):
        return [
            c
            for c in ax.collections
            if isinstance(c, matplotlib.collections.LineCollection) and len(c.get_segments()) > 4
        ]

    assert not participant_lines(ax)
    assert len(ax.patches) == 4  # a box per arm and visit
    assert fig.legends and "values per visit (box: quartiles; whiskers: 1.5 IQR)" in [
        t.get_text() for t in fig.legends[0].get_texts()
    ]
    few, _ = toy_trial(n=40, seed=3)
    res = [analyse_outcome(few, meta, "pain", AnalysisOptions()).__dict__]
    ax = trial.trajectory(few, meta, "pain", emmeans_table(res, meta)).axes[0]
    assert len(participant_lines(ax)) == 2 and not ax.patches  # a small trial: every participant's line
