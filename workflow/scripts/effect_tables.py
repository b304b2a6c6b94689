from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.effect_tables(
    list(snakemake.input.results),
    snakemake.input.meta,
    snakemake.params.method,
    dict(snakemake.output.items()),
)
