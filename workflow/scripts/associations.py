from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.association_table(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    families=tuple(snakemake.params.families),
    method=snakemake.params.method,
    alpha=snakemake.params.alpha,
    min_n=snakemake.params.min_n,
    out=snakemake.output[0],
)
