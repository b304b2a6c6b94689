from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.manifest(list(snakemake.input), "results", snakemake.output[0])
