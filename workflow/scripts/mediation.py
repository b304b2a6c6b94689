from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.mediation_analyses(
    snakemake.input.frame,
    snakemake.input.meta,
    dict(snakemake.params.settings),
    snakemake.params.seed,
    snakemake.params.alpha,
    snakemake.params.method,
    snakemake.output.table,
    snakemake.params.stem,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
)
