import os
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pnitrial.data.codebook import load_codebook as read_codebook
from pnitrial.errors import ValidationError
from pnitrial.data.panel import analyte_count


# The codebook is read and checked by pnitrial.codebook, the one codebook reader, before any job
# runs (a bad one names its file and key); the table is checked by validate_data.
def load_codebook(path):
    try:
        return read_codebook(path)
    except ValidationError as exc:
        raise WorkflowError(str(exc)) from None


CODEBOOK = load_codebook(config["dataset"])
TABLE = str(CODEBOOK.table)
ICE_TABLE = [str(CODEBOOK.ice.table)] if CODEBOOK.ice is not None else []
OUTCOMES = [o.key for o in CODEBOOK.outcomes]
FORMATS = config["figures"]["formats"]
ENV = "../envs/pnitrial.yaml"


def panel_chunks(codebook):
    """Chunk indices of the panel: scatter.chunks, at most one per analyte (none without a panel)."""
    if codebook.panel is None:
        return None, []
    # analytes as validate_panel sees them (listed, or every column not repeated from the trial table
    # nor ignored); an unreadable table gives one chunk and validate_panel says why
    n = min(config["scatter"]["chunks"], analyte_count(codebook))
    return str(codebook.panel.table), list(range(max(1, n)))


PANEL_TABLE, PANEL_CHUNKS = panel_chunks(CODEBOOK)


wildcard_constraints:
    outcome="|".join(OUTCOMES),
    chunk=r"\d+",


# Short aggregation and plotting jobs stay on the submitting host; models and the analyses that
# refit them (sensitivity, diagnostics, mediation, permutation, missing data) go to the cluster.
localrules:
    all,
    effect_tables,
    table1,
    flow,
    baseline_vs_healthy,
    trajectory_figure,
    trajectory_figures,
    forest_figure,
    baseline_figure,
    effect_sizes,
    association_heatmap,
    sensitivity_figure,
    sensitivity_figures,
    summary,
    provenance,
    manifest,
    verify,
    simulate_demo,


def mem_mb(base, per_input_mb):
    """A job's memory request (MB): the interpreter and libraries, plus what grows with its inputs.

    Measured peaks (results/benchmarks): about 200 MB for the demo's jobs, and for 100,000 rows
    (a 7 MB long frame) 860 MB in diagnostics, 540 MB in the fits; a retry asks for twice as much.
    """
    return lambda wildcards, input, attempt: attempt * int(
        base + per_input_mb * input.size_mb
    )


def figure_stem(wildcards, output):
    """Path of a figure without its extension, from the rule's first output."""
    return os.path.splitext(output[0])[0]


def named_figure_stem(wildcards, output):
    """Path without extension of a rule's `figure` output."""
    return os.path.splitext(output.figure[0])[0]


def figures_dir(wildcards, output):
    """Folder of a rule's per-outcome `figures` outputs."""
    return os.path.dirname(output.figures[0])


def all_outputs():
    return [
        "results/tables/lod_counts.csv",
        "results/tables/table1.csv",
        "results/tables/table1.md",
        "results/summary.html",
        *trial_outputs(),
        *panel_outputs(),
    ]


def trial_outputs():
    """The analyses of the codebook's outcomes (none for a panel-only codebook)."""
    if not OUTCOMES:
        return []
    return [
        "results/tables/effects.csv",
        "results/tables/emmeans.csv",
        "results/tables/fits.csv",
        "results/tables/anova.csv",
        *with_healthy("results/tables/baseline_vs_healthy.csv"),
        "results/tables/effects.md",
        "results/tables/flow.csv",
        "results/tables/flow.md",
        "results/tables/flow.tex",
        *expand("results/figures/flow.{ext}", ext=FORMATS),
        *expand("results/figures/forest.{ext}", ext=FORMATS),
        *with_healthy(expand("results/figures/baseline_vs_healthy.{ext}", ext=FORMATS)),
        *expand(
            "results/figures/trajectory/{outcome}.{ext}", outcome=OUTCOMES, ext=FORMATS
        ),
        "results/tables/effect_sizes.csv",
        "results/tables/associations.csv",
        "results/tables/sensitivity.csv",
        "results/tables/diagnostics.csv",
        "results/tables/mediation.csv",
        *expand("results/figures/mediation.{ext}", ext=FORMATS),
        *expand(
            "results/figures/diagnostics/{outcome}.{ext}", outcome=OUTCOMES, ext=FORMATS
        ),
        *expand(
            "results/figures/sensitivity/{outcome}.{ext}", outcome=OUTCOMES, ext=FORMATS
        ),
        *expand("results/figures/associations.{ext}", ext=FORMATS),
        *permutation_outputs(),
        *covariance_compare_outputs(),
        *missing_data_outputs(),
    ]


def panel_outputs():
    if PANEL_TABLE is None:
        return []
    return [
        "results/tables/panel_effects.csv",
        "results/tables/panel_fits.csv",
        "results/tables/panel_top.csv",
        "results/tables/panel_top.md",
        *expand("results/figures/panel_volcano.{ext}", ext=FORMATS),
        *expand("results/figures/panel_top.{ext}", ext=FORMATS),
    ]


def covariance_compare_outputs():
    if config["model"]["covariance_compare"]:
        return ["results/tables/covariance_compare.csv"]
    return []


def missing_data_outputs():
    if config["missing_data"]["strategies"]:
        return [
            "results/tables/missing_data.csv",
            "results/tables/tipping_point.csv",
            *expand("results/figures/tipping_point.{ext}", ext=FORMATS),
            *expand(
                "results/figures/tipping_point/{outcome}.{ext}",
                outcome=OUTCOMES,
                ext=FORMATS,
            ),
        ]
    return []


def permutation_outputs():
    if config["permutation"]["rerandomisations"] > 0:
        return ["results/tables/permutation.csv"]
    return []


def panel_summary_inputs():
    if PANEL_TABLE is None:
        return []
    return ["results/tables/panel_top.csv", "results/data/panel_meta.json"]


def intermediate_outputs():
    """Validated data and per-model results: in the manifest, so an edited or damaged one is caught."""
    files = ["results/data/long.csv", "results/data/meta.json", "results/data/ice.csv"]
    files += expand("results/models/{outcome}.json", outcome=OUTCOMES)
    if PANEL_TABLE is not None:
        files += [
            "results/data/panel_rows.csv",
            "results/data/panel_values.csv",
            "results/data/panel_meta.json",
        ]
    return files


def healthy_arm():
    """The codebook's healthy control arm, or None (then no patients-vs-healthy table or figure)."""
    if hasattr(CODEBOOK, "healthy"):
        return CODEBOOK.healthy
    return (CODEBOOK.get("arms") or {}).get("healthy")


def with_healthy(files):
    """files for a trial with a healthy group, else none."""
    if healthy_arm() is None:
        return []
    return [files] if isinstance(files, str) else list(files)


def png_of(files):
    """The PNGs of these figures, inlined in the summary page (none when figures.formats lacks png)."""
    if "png" not in FORMATS:
        return []
    return [files] if isinstance(files, str) else list(files)


def with_outcomes(files):
    """files for a trial with outcomes, else none (a panel-only codebook runs the panel alone)."""
    if not OUTCOMES:
        return []
    return [files] if isinstance(files, str) else list(files)
