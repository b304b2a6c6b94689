from pnitrial import steps
from pnitrial.analysis import AnalysisOptions

steps.log_to(snakemake.log[0])
opts = AnalysisOptions(
    ddf=snakemake.params.ddf,
    alpha=snakemake.params.alpha,
    random_slope=snakemake.params.random_slope,
    primary=snakemake.params.primary,
)
steps.fit_panel_chunk(
    dict(snakemake.input.items()),
    int(snakemake.wildcards.chunk),
    snakemake.params.chunks,
    opts,
    dict(snakemake.output.items()),
)
