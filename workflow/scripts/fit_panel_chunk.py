from pnitrial import steps

steps.log_to(snakemake.log[0])
opts = steps.analysis_options(params=snakemake.params)
steps.fit_panel_chunk(
    inputs=dict(snakemake.input.items()),
    chunk=int(snakemake.wildcards.chunk),
    chunks=snakemake.params.chunks,
    opts=opts,
    out=dict(snakemake.output.items()),
)
