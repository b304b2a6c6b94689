from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.manifest(files=list(snakemake.input), root="results", out=snakemake.output[0])
