from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.validate_data(
    codebook=snakemake.input.codebook,
    frame_out=snakemake.output.frame,
    meta_out=snakemake.output.meta,
    ice_out=snakemake.output.ice,
    lod_out=snakemake.output.lod,
    lod_method=snakemake.params.lod_method,
    min_per_arm=snakemake.params.min_per_arm,
)
