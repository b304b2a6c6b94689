from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.permutation_tests(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    effects_path=snakemake.input.effects,
    primary=snakemake.params.primary,
    B=snakemake.params.rerandomisations,
    seed=snakemake.params.seed,
    method=snakemake.params.multiplicity,
    out=snakemake.output[0],
)
