from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.diagnostics(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    primary=snakemake.params.primary,
    random_slope=snakemake.params.random_slope,
    out=snakemake.output.table,
    figure_dir=snakemake.params.figure_dir,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
)
