# pnitrial: re-analysis of a randomised pre-post trial described by a dataset codebook.
# Run: snakemake --cores all   (see README.md and config/README.md)

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


if OUTCOMES:

    include: "workflow/rules/stages.smk"
    include: "workflow/rules/missing_data.smk"


if PANEL_TABLE is not None:

    include: "workflow/rules/panel.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
        "results/MANIFEST.sha256",
        "results/provenance.json",
