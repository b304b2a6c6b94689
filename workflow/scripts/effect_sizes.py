from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.effect_sizes_table(
    effects_path=snakemake.input.effects,
    baseline_path=next(iter(snakemake.input.baseline), None),  # none without a healthy group
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    out=snakemake.output[0],
)
