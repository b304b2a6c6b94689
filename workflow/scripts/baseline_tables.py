from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.baseline_tables(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    alpha=snakemake.params.alpha,
    out=dict(snakemake.output.items()),
)
