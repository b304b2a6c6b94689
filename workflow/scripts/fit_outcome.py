from pnitrial import steps

steps.log_to(snakemake.log[0])
opts = steps.analysis_options(snakemake.params)
steps.fit_outcome(
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.wildcards.outcome,
    snakemake.output[0],
    opts,
)
