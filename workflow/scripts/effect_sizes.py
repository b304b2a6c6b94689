from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.effect_sizes_table(
    snakemake.input.effects,
    next(iter(snakemake.input.baseline), None),  # none without a healthy group
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.output[0],
)
