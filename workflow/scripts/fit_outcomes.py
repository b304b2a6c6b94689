from pnitrial import steps

steps.log_to(snakemake.log[0])
opts = steps.analysis_options(params=snakemake.params)
for outcome, out in zip(snakemake.params.outcomes, snakemake.output, strict=True):
    steps.fit_outcome(
        frame_path=snakemake.input.frame,
        meta_path=snakemake.input.meta,
        outcome=outcome,
        out=out,
        opts=opts,
    )
