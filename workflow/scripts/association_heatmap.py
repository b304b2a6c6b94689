from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.association_figure(
    snakemake.input.table,
    snakemake.input.meta,
    snakemake.params.stem,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
    snakemake.params.alpha,
)
