from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.sensitivity_analyses(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    opts=steps.analysis_options(params=snakemake.params),
    outliers=snakemake.params.outliers,
    k=snakemake.params.k,
    out=snakemake.output[0],
)
