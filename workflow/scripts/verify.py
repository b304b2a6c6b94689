from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.verify(results=snakemake.params.results, expected=snakemake.input.expected, mode=snakemake.params.mode)
