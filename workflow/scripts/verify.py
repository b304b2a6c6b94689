from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.verify(snakemake.input.manifest, snakemake.input.expected)
