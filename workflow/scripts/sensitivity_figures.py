from pnitrial import steps

steps.log_to(snakemake.log[0])
pairs = list(zip(snakemake.params.outcomes, snakemake.params.stems, strict=True))
for outcome, stem in steps.track(pairs, len(pairs), "sensitivity figures", "figures"):
    steps.sensitivity_figure(
        table_path=snakemake.input.table,
        meta_path=snakemake.input.meta,
        outcome=outcome,
        stem=stem,
        formats=tuple(snakemake.params.formats),
        dpi=snakemake.params.dpi,
        alpha=snakemake.params.alpha,
    )
