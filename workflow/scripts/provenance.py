from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.provenance(
    config=dict(snakemake.params.config),
    inputs={"codebook": snakemake.input.codebook, "table": snakemake.input.table},
    workflow_dir=snakemake.params.workflow_dir,
    out=snakemake.output[0],
)
