from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.missing_data(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    strategies=tuple(snakemake.params.strategies),
    delta_sd=tuple(snakemake.params.delta_sd),
    delta=tuple(snakemake.params.delta),
    alpha=snakemake.params.alpha,
    structures=("us", *snakemake.params.covariance_fallback),
    max_participants=snakemake.params.max_participants,
    ice_path=snakemake.input.ice if snakemake.params.ice_table else None,
    out={"effects": snakemake.output.effects, "tipping": snakemake.output.tipping},
    stem=snakemake.params.stem,
    outcome_stems=dict(snakemake.params.outcome_stems),
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
)
