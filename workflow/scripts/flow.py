from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.participant_flow(
    frame_path=snakemake.input.frame,
    meta_path=snakemake.input.meta,
    fits_path=snakemake.input.fits,
    primary=snakemake.params.primary,
    out=dict(snakemake.output.items()),
    stem=snakemake.params.stem,
    formats=tuple(snakemake.params.formats),
    dpi=snakemake.params.dpi,
)
