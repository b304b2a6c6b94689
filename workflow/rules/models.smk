rule fit_outcome:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        "results/models/{outcome}.json",
    log:
        "results/logs/fit_outcome/{outcome}.log",
    benchmark:
        "results/benchmarks/fit_outcome/{outcome}.tsv"
    priority: 10
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=10,
    params:
        ddf=config["inference"]["ddf"],
        alpha=config["inference"]["alpha"],
        random_slope=config["model"]["random_slope"],
        covariance=config["model"]["covariance"],
        covariance_fallback=config["model"]["covariance_fallback"],
        reml=config["model"]["reml"],
        primary=config["analysis"]["primary"],
        lod_method=config["lod"]["method"],
    script:
        "../scripts/fit_outcome.py"


# model.covariance_compare: each listed structure fitted to every outcome (beside, not instead of, the primary).
rule covariance_compare:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        report(
            "results/tables/covariance_compare.csv",
            caption="../report/covariance_compare.rst",
            category="Tables",
            subcategory="Models",
        ),
    log:
        "results/logs/covariance_compare.log",
    benchmark:
        "results/benchmarks/covariance_compare.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        structures=config["model"]["covariance_compare"],
        ddf=config["inference"]["ddf"],
        alpha=config["inference"]["alpha"],
        random_slope=config["model"]["random_slope"],
        reml=config["model"]["reml"],
        primary=config["analysis"]["primary"],
    script:
        "../scripts/covariance_compare.py"


# Re-randomisation of the arm labels, refitted in batches: one job for every outcome (seconds).
rule permutation_tests:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
        effects="results/tables/effects.csv",
    output:
        report(
            "results/tables/permutation.csv",
            caption="../report/permutation.rst",
            category="Tables",
            subcategory="Randomisation inference",
        ),
    log:
        "results/logs/permutation_tests.log",
    benchmark:
        "results/benchmarks/permutation_tests.tsv"
    priority: 4
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        primary=config["analysis"]["primary"],
        rerandomisations=config["permutation"]["rerandomisations"],
        seed=config["seed"],
        multiplicity=config["multiplicity"]["method"],
    script:
        "../scripts/permutation_tests.py"


# Refits under other data choices plus nonparametric and ANOVA cross-checks: one short job.
rule sensitivity:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        report(
            "results/tables/sensitivity.csv",
            caption="../report/sensitivity.rst",
            category="Tables",
            subcategory="Sensitivity",
        ),
    log:
        "results/logs/sensitivity.log",
    benchmark:
        "results/benchmarks/sensitivity.tsv"
    priority: 6
    conda:
        ENV
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        ddf=config["inference"]["ddf"],
        alpha=config["inference"]["alpha"],
        random_slope=config["model"]["random_slope"],
        covariance=config["model"]["covariance"],
        covariance_fallback=config["model"]["covariance_fallback"],
        reml=config["model"]["reml"],
        primary=config["analysis"]["primary"],
        lod_method=config["lod"]["method"],
        outliers=config["sensitivity"]["outliers"],
        k=config["sensitivity"]["k"],
    script:
        "../scripts/sensitivity.py"


# One job: 16 outcomes x (fit + one refit per participant) take seconds, and one interpreter.
rule diagnostics:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        table=report(
            "results/tables/diagnostics.csv",
            caption="../report/diagnostics.rst",
            category="Tables",
            subcategory="Diagnostics",
        ),
        figures=report(
            expand(
                "results/figures/diagnostics/{outcome}.{ext}",
                outcome=OUTCOMES,
                ext=FORMATS,
            ),
            caption="../report/diagnostics_figure.rst",
            category="Figures",
            subcategory="Diagnostics",
        ),
    log:
        "results/logs/diagnostics.log",
    benchmark:
        "results/benchmarks/diagnostics.tsv"
    priority: 5
    conda:
        ENV
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        primary=config["analysis"]["primary"],
        random_slope=config["model"]["random_slope"],
        figure_dir=figures_dir,
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/diagnostics.py"
