from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.baseline_figure(
    baseline_path=snakemake.input.baseline,
    meta_path=snakemake.input.meta,
    stem=snakemake.params.stem,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
)
