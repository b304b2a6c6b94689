from pnitrial import steps

steps.log_to(snakemake.log[0])
opts = steps.analysis_options(params=snakemake.params)
steps.fit_outcome(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    outcome=snakemake.wildcards.outcome,
    out=snakemake.output[0],
    opts=opts,
)
