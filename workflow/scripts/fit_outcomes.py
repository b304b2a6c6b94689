from pnitrial import steps

steps.log_to(snakemake.log[0])
opts = steps.analysis_options(params=snakemake.params)
pairs = list(zip(snakemake.params.outcomes, snakemake.output, strict=True))
for outcome, out in steps.track(pairs, len(pairs), "fits", "outcomes"):
    steps.fit_outcome(
        frame_path=snakemake.input.frame,
        meta_path=snakemake.input.meta,
        outcome=outcome,
        out=out,
        opts=opts,
    )
