from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.validate_panel(
    snakemake.input.codebook,
    dict(snakemake.output.items()),
    snakemake.params.min_per_arm,
)
