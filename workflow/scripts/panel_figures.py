import os

from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.panel_figures(
    effects_path=snakemake.input.effects,
    panel_meta=snakemake.input.panel_meta,
    alpha=snakemake.params.alpha,
    top_n=snakemake.params.top_n,
    stems={
        k: os.path.splitext(v[0])[0]
        for k, v in (("volcano", snakemake.output.volcano), ("forest", snakemake.output.forest))
    },
    formats=snakemake.params.formats,
    dpi=snakemake.params.dpi,
)
