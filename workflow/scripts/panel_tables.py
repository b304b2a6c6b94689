from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.panel_tables(
    list(snakemake.input.effects),
    list(snakemake.input.fits),
    snakemake.input.meta,
    snakemake.input.panel_meta,
    snakemake.params.method,
    snakemake.params.top_n,
    dict(snakemake.output.items()),
)
