from pnitrial import steps

steps.log_to(snakemake.log[0])
opts = steps.analysis_options(snakemake.params)
steps.fit_panel_chunk(
    dict(snakemake.input.items()),
    int(snakemake.wildcards.chunk),
    snakemake.params.chunks,
    opts,
    dict(snakemake.output.items()),
)
