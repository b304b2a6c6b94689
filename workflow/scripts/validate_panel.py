from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.validate_panel(
    codebook=snakemake.input.codebook, out=dict(snakemake.output.items()), min_per_arm=snakemake.params.min_per_arm
)
