from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.forest_figure(
    snakemake.input.effects,
    snakemake.input.meta,
    snakemake.params.stem,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
)
