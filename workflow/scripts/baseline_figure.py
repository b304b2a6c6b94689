from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.baseline_figure(
    snakemake.input.baseline,
    snakemake.input.meta,
    snakemake.params.stem,
    tuple(snakemake.params.formats),
    snakemake.params.dpi,
)
