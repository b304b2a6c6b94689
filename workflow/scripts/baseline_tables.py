from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.baseline_tables(
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.params.alpha,
    dict(snakemake.output.items()),
)
