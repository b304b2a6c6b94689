from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.sensitivity_analyses(
    snakemake.input.frame,
    snakemake.input.meta,
    steps.analysis_options(snakemake.params),
    snakemake.params.outliers,
    snakemake.params.k,
    snakemake.output[0],
)
