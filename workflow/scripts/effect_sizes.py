from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.effect_sizes_table(
    snakemake.input.effects,
    snakemake.input.baseline,
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.output[0],
)
