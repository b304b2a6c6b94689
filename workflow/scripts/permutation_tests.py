from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.permutation_tests(
    snakemake.input.frame,
    snakemake.input.meta,
    snakemake.input.effects,
    snakemake.params.primary,
    snakemake.params.rerandomisations,
    snakemake.params.seed,
    snakemake.params.multiplicity,
    snakemake.output[0],
)
