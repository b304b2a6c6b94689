from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.effect_tables(
    results=list(snakemake.input.results),
    meta_path=snakemake.input.meta,
    method=snakemake.params.method,
    out=dict(snakemake.output.items()),
)
