from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.association_table(
    snakemake.input.frame,
    snakemake.input.meta,
    tuple(snakemake.params.families),
    snakemake.params.method,
    snakemake.params.alpha,
    snakemake.params.min_n,
    snakemake.output[0],
)
