from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.diagnostics(
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.params.primary,
    snakemake.params.random_slope,
    snakemake.output.table,
    snakemake.params.figure_dir,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
)
