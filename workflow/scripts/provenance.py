from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.provenance(
    dict(snakemake.params.config),
    {"codebook": snakemake.input.codebook, "table": snakemake.input.table},
    snakemake.params.workflow_dir,
    snakemake.output[0],
)
