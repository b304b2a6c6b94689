from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.trajectory_figure(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    emmeans_path=snakemake.input.emmeans,
    outcome=snakemake.wildcards.outcome,
    stem=snakemake.params.stem,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
    alpha=snakemake.params.alpha,
)
