from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.association_figure(
    table_path=snakemake.input.table,
    meta_path=snakemake.input.meta,
    stem=snakemake.params.stem,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
    alpha=snakemake.params.alpha,
)
