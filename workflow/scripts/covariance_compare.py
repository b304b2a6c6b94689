from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.covariance_comparison(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    structures=snakemake.params.structures,
    opts=steps.analysis_options(params=snakemake.params),
    out=snakemake.output[0],
)
