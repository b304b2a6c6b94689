from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.verify(snakemake.params.results, snakemake.input.expected, snakemake.params.mode)
