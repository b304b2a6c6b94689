from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.summary(dict(snakemake.input.items()), dict(snakemake.params.config), snakemake.output[0])
