from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.mediation_analyses(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    settings=dict(snakemake.params.settings),
    seed=snakemake.params.seed,
    alpha=snakemake.params.alpha,
    method=snakemake.params.method,
    out=snakemake.output.table,
    stem=snakemake.params.stem,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
)
