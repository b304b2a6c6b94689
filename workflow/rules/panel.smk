# A panel of many analytes (codebook key `panel`): validated once, fitted in scatter.chunks
# batched jobs that a cluster runs in parallel, gathered into one table and two figures.


localrules:
    panel_tables,
    panel_figures,


rule validate_panel:
    input:
        codebook=config["dataset"],
        table=TABLE,
        panel=PANEL_TABLE,
        validated="results/data/meta.json",  # the trial table passed its checks
    output:
        rows="results/data/panel_rows.csv",
        values="results/data/panel_values.csv",
        meta="results/data/panel_meta.json",
    log:
        "results/logs/validate_panel.log",
    benchmark:
        "results/benchmarks/validate_panel.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=10,
    params:
        min_per_arm=config["validation"]["min_per_arm"],
    script:
        "../scripts/validate_panel.py"


rule fit_panel_chunk:
    input:
        rows="results/data/panel_rows.csv",
        values="results/data/panel_values.csv",
        panel_meta="results/data/panel_meta.json",
        meta="results/data/meta.json",
    output:
        effects="results/panel/chunks/{chunk}.effects.csv",
        fits="results/panel/chunks/{chunk}.fits.csv",
    log:
        "results/logs/fit_panel_chunk/{chunk}.log",
    benchmark:
        "results/benchmarks/fit_panel_chunk/{chunk}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        chunks=len(PANEL_CHUNKS),
        ddf=config["inference"]["ddf"],
        alpha=config["inference"]["alpha"],
        random_slope=config["model"]["random_slope"],
        covariance=config["model"]["covariance"],
        covariance_fallback=config["model"]["covariance_fallback"],
        reml=config["model"]["reml"],
        primary=config["analysis"]["primary"],
    script:
        "../scripts/fit_panel_chunk.py"


rule panel_tables:
    input:
        effects=expand("results/panel/chunks/{chunk}.effects.csv", chunk=PANEL_CHUNKS),
        fits=expand("results/panel/chunks/{chunk}.fits.csv", chunk=PANEL_CHUNKS),
        meta="results/data/meta.json",
        panel_meta="results/data/panel_meta.json",
    output:
        effects=report(
            "results/tables/panel_effects.csv",
            caption="../report/panel_effects.rst",
            category="Panel",
        ),
        fits="results/tables/panel_fits.csv",
        top="results/tables/panel_top.csv",
        top_md="results/tables/panel_top.md",
        top_tex="results/tables/panel_top.tex",
        top_html=report(
            "results/tables/panel_top.html",
            caption="../report/panel_top.rst",
            category="Panel",
        ),
    log:
        "results/logs/panel_tables.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        method=config["multiplicity"]["method"],
        top_n=config["figures"]["top_n"],
    script:
        "../scripts/panel_tables.py"


rule panel_figures:
    input:
        effects="results/tables/panel_effects.csv",
        panel_meta="results/data/panel_meta.json",
    output:
        volcano=report(
            expand("results/figures/panel_volcano.{ext}", ext=FORMATS),
            caption="../report/panel_volcano.rst",
            category="Panel",
        ),
        forest=report(
            expand("results/figures/panel_top.{ext}", ext=FORMATS),
            caption="../report/panel_forest.rst",
            category="Panel",
        ),
    log:
        "results/logs/panel_figures.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        alpha=config["inference"]["alpha"],
        top_n=config["figures"]["top_n"],
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/panel_figures.py"
