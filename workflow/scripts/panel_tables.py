from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.panel_tables(
    effects=list(snakemake.input.effects),
    fits=list(snakemake.input.fits),
    meta_path=snakemake.input.meta,
    panel_meta=snakemake.input.panel_meta,
    method=snakemake.params.method,
    top_n=snakemake.params.top_n,
    out=dict(snakemake.output.items()),
)
