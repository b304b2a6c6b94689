rule trajectory_figure:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
        emmeans="results/tables/emmeans.csv",
    output:
        report(
            expand("results/figures/trajectory/{{outcome}}.{ext}", ext=FORMATS),
            caption="../report/trajectory.rst",
            category="Figures",
            subcategory="Trajectories",
            labels={"outcome": "{outcome}"},
        ),
    log:
        "results/logs/trajectory_figure/{outcome}.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        stem=figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/trajectory_figure.py"


rule forest_figure:
    input:
        effects="results/tables/effects.csv",
        effect_sizes="results/tables/effect_sizes.csv",
        meta="results/data/meta.json",
    output:
        report(
            expand("results/figures/forest.{ext}", ext=FORMATS),
            caption="../report/forest.rst",
            category="Figures",
            subcategory="Intervention effects",
        ),
    log:
        "results/logs/forest_figure.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        stem=figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/forest_figure.py"


rule baseline_figure:
    input:
        baseline="results/tables/baseline_vs_healthy.csv",
        meta="results/data/meta.json",
    output:
        report(
            expand("results/figures/baseline_vs_healthy.{ext}", ext=FORMATS),
            caption="../report/baseline_figure.rst",
            category="Figures",
            subcategory="Baseline",
        ),
    log:
        "results/logs/baseline_figure.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        stem=figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/baseline_figure.py"


rule association_heatmap:
    input:
        table="results/tables/associations.csv",
        meta="results/data/meta.json",
    output:
        report(
            expand("results/figures/associations.{ext}", ext=FORMATS),
            caption="../report/association_heatmap.rst",
            category="Figures",
            subcategory="Biomarker-symptom associations",
        ),
    log:
        "results/logs/association_heatmap.log",
    benchmark:
        "results/benchmarks/association_heatmap.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        stem=figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/association_heatmap.py"


rule sensitivity_figure:
    input:
        table="results/tables/sensitivity.csv",
        meta="results/data/meta.json",
    output:
        report(
            expand("results/figures/sensitivity/{{outcome}}.{ext}", ext=FORMATS),
            caption="../report/sensitivity_figure.rst",
            category="Figures",
            subcategory="Sensitivity",
            labels={"outcome": "{outcome}"},
        ),
    log:
        "results/logs/sensitivity_figure/{outcome}.log",
    benchmark:
        "results/benchmarks/sensitivity_figure/{outcome}.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        stem=figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/sensitivity_figure.py"
