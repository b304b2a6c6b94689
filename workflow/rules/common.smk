import os

import yaml
from pathlib import Path


# The codebook is schema-checked before any job runs; the table is checked by validate_data.
def load_codebook(path):
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    validate(raw, "../schemas/dataset.schema.yaml")
    return raw


CODEBOOK = load_codebook(config["dataset"])
TABLE = str(Path(config["dataset"]).parent / CODEBOOK["table"])
OUTCOMES = list(CODEBOOK["outcomes"])
FORMATS = config["figures"]["formats"]
ENV = "../envs/pnitrial.yaml"


wildcard_constraints:
    outcome="|".join(OUTCOMES),


# Short aggregation and plotting jobs stay on the submitting host; models go to the cluster.
localrules:
    all,
    effect_tables,
    baseline_tables,
    trajectory_figure,
    forest_figure,
    baseline_figure,
    summary,
    provenance,
    manifest,
    verify,
    simulate_demo,


def figure_stem(wildcards, output):
    """Path of a figure without its extension, from the rule's first output."""
    return os.path.splitext(output[0])[0]


def all_outputs():
    return [
        "results/tables/effects.csv",
        "results/tables/emmeans.csv",
        "results/tables/fits.csv",
        "results/tables/anova.csv",
        "results/tables/lod_counts.csv",
        "results/tables/baseline_vs_healthy.csv",
        "results/tables/table1.csv",
        "results/tables/effects.md",
        "results/tables/table1.md",
        "results/summary.html",
        *expand("results/figures/forest.{ext}", ext=FORMATS),
        *expand("results/figures/baseline_vs_healthy.{ext}", ext=FORMATS),
        *expand(
            "results/figures/trajectory/{outcome}.{ext}", outcome=OUTCOMES, ext=FORMATS
        ),
    ]
