from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.trajectory_figure(
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.input.emmeans,
    snakemake.wildcards.outcome,
    snakemake.params.stem,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
    snakemake.params.alpha,
)
