from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.forest_figure(
    effects_path=snakemake.input.effects,
    effect_sizes_path=snakemake.input.effect_sizes,
    meta_path=snakemake.input.meta,
    stem=snakemake.params.stem,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
)
