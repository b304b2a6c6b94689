from pnitrial import steps

steps.log_to(snakemake.log[0])
pairs = list(zip(snakemake.params.outcomes, snakemake.params.stems, strict=True))
for outcome, stem in steps.track(pairs, len(pairs), "trajectory figures", "figures"):
    steps.trajectory_figure(
        frame_path=snakemake.input.frame,
        meta_path=snakemake.input.meta,
        emmeans_path=snakemake.input.emmeans,
        outcome=outcome,
        stem=stem,
        formats=tuple(snakemake.params.formats),
        dpi=snakemake.params.dpi,
        alpha=snakemake.params.alpha,
    )
