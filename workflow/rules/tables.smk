rule effect_tables:
    input:
        results=expand("results/models/{outcome}.json", outcome=OUTCOMES),
        meta="results/data/meta.json",
    output:
        effects=report(
            "results/tables/effects.csv",
            caption="../report/effects.rst",
            category="Tables",
            subcategory="Intervention effects",
        ),
        emmeans=report(
            "results/tables/emmeans.csv",
            caption="../report/emmeans.rst",
            category="Tables",
            subcategory="Intervention effects",
        ),
        fits=report(
            "results/tables/fits.csv",
            caption="../report/fits.rst",
            category="Tables",
            subcategory="Models",
        ),
        anova=report(
            "results/tables/anova.csv",
            caption="../report/anova.rst",
            category="Tables",
            subcategory="Models",
        ),
        effects_md="results/tables/effects.md",
        effects_tex="results/tables/effects.tex",
        effects_html=report(
            "results/tables/effects.html",
            caption="../report/effects_readable.rst",
            category="Tables",
            subcategory="Intervention effects",
        ),
    log:
        "results/logs/effect_tables.log",
    priority: 10
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        method=config["multiplicity"]["method"],
    script:
        "../scripts/effect_tables.py"


rule table1:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        table1="results/tables/table1.csv",
        table1_md="results/tables/table1.md",
        table1_tex="results/tables/table1.tex",
        table1_html=report(
            "results/tables/table1.html",
            caption="../report/table1.rst",
            category="Tables",
            subcategory="Baseline",
        ),
    log:
        "results/logs/table1.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/baseline_tables.py"


# CONSORT 2010 item 13: enrolled, randomised, measured / missing per visit and family, analysed.
rule flow:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
        fits="results/tables/fits.csv",
    output:
        flow="results/tables/flow.csv",
        flow_md="results/tables/flow.md",
        flow_tex="results/tables/flow.tex",
        flow_html=report(
            "results/tables/flow.html",
            caption="../report/flow.rst",
            category="Tables",
            subcategory="Participant flow",
        ),
        figure=report(
            expand("results/figures/flow.{ext}", ext=FORMATS),
            caption="../report/flow_figure.rst",
            category="Figures",
            subcategory="Participant flow",
        ),
    log:
        "results/logs/flow.log",
    benchmark:
        "results/benchmarks/flow.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        primary=config["analysis"]["primary"],
        stem=named_figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/flow.py"


# Only for trials with a healthy control group (arms.healthy in the codebook).
rule baseline_vs_healthy:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        baseline=report(
            "results/tables/baseline_vs_healthy.csv",
            caption="../report/baseline_vs_healthy.rst",
            category="Tables",
            subcategory="Baseline",
        ),
    log:
        "results/logs/baseline_vs_healthy.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/baseline_tables.py"


rule effect_sizes:
    input:
        effects="results/tables/effects.csv",
        baseline=with_healthy("results/tables/baseline_vs_healthy.csv"),
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        report(
            "results/tables/effect_sizes.csv",
            caption="../report/effect_sizes.rst",
            category="Tables",
            subcategory="Effect sizes",
        ),
    log:
        "results/logs/effect_sizes.log",
    benchmark:
        "results/benchmarks/effect_sizes.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    script:
        "../scripts/effect_sizes.py"


rule associations:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        report(
            "results/tables/associations.csv",
            caption="../report/associations.rst",
            category="Tables",
            subcategory="Biomarker-symptom associations",
        ),
    log:
        "results/logs/associations.log",
    benchmark:
        "results/benchmarks/associations.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        families=[
            config["associations"]["biomarker_family"],
            config["associations"]["clinical_family"],
        ],
        method=config["multiplicity"]["method"],
        alpha=config["inference"]["alpha"],
        min_n=config["associations"]["min_participants"],
    script:
        "../scripts/associations.py"


rule mediation:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        table=report(
            "results/tables/mediation.csv",
            caption="../report/mediation.rst",
            category="Tables",
            subcategory="Mediation",
        ),
        figure=report(
            expand("results/figures/mediation.{ext}", ext=FORMATS),
            caption="../report/mediation_figure.rst",
            category="Figures",
            subcategory="Mediation",
        ),
    log:
        "results/logs/mediation.log",
    benchmark:
        "results/benchmarks/mediation.tsv"
    conda:
        ENV
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        settings=config["mediation"],
        seed=config["seed"],
        alpha=config["inference"]["alpha"],
        method=config["multiplicity"]["method"],
        stem=named_figure_stem,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/mediation.py"
