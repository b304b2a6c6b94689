import os

from pnitrial import steps

steps.log_to(snakemake.log[0])
steps.panel_figures(
    snakemake.input.effects,
    snakemake.input.panel_meta,
    snakemake.params.alpha,
    snakemake.params.top_n,
    {
        k: os.path.splitext(v[0])[0]
        for k, v in (("volcano", snakemake.output.volcano), ("forest", snakemake.output.forest))
    },
    snakemake.params.formats,
    snakemake.params.dpi,
)
