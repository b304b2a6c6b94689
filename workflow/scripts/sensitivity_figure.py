from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.sensitivity_figure(
    snakemake.input.table,
    snakemake.input.meta,
    snakemake.wildcards.outcome,
    snakemake.params.stem,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
    snakemake.params.alpha,
)
