from pnitrial import steps
from pnitrial.analysis import AnalysisOptions

steps.log_to(snakemake.log[0])
opts = AnalysisOptions(
    ddf=snakemake.params.ddf,
    alpha=snakemake.params.alpha,
    random_slope=snakemake.params.random_slope,
    primary=snakemake.params.primary,
)
steps.fit_outcome(
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.wildcards.outcome,
    snakemake.output[0],
    opts,
)
