# missing_data.strategies: reference-based conditional mean imputation with jackknife SEs (rbmi's
# method_condmean), and the MAR tipping point. A cluster job: one MMRM refit per participant.
rule missing_data:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
        ice="results/data/ice.csv",
    output:
        effects=report(
            "results/tables/missing_data.csv",
            caption="../report/missing_data.rst",
            category="Tables",
            subcategory="Missing data",
        ),
        tipping=report(
            "results/tables/tipping_point.csv",
            caption="../report/tipping_point.rst",
            category="Tables",
            subcategory="Missing data",
        ),
        figures=report(
            expand("results/figures/tipping_point.{ext}", ext=FORMATS),
            caption="../report/tipping_point_figure.rst",
            category="Figures",
            subcategory="Missing data",
        ),
        outcome_figures=report(
            expand(
                "results/figures/tipping_point/{outcome}.{ext}",
                outcome=OUTCOMES,
                ext=FORMATS,
            ),
            caption="../report/tipping_point_figure.rst",
            category="Figures",
            subcategory="Missing data",
        ),
    log:
        "results/logs/missing_data.log",
    benchmark:
        "results/benchmarks/missing_data.tsv"
    priority: 5
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=30,
    params:
        strategies=config["missing_data"]["strategies"],
        delta_sd=config["missing_data"]["delta_sd"],
        delta=config["missing_data"]["delta"],
        max_participants=config["missing_data"]["max_participants"],
        ice_table=CODEBOOK.ice is not None,
        alpha=config["inference"]["alpha"],
        covariance_fallback=config["model"]["covariance_fallback"],
        stem=lambda wildcards, output: os.path.splitext(output.figures[0])[0],
        outcome_stems=lambda wildcards, output: {
            outcome: os.path.splitext(path)[0]
            for outcome, path in zip(OUTCOMES, output.outcome_figures[:: len(FORMATS)])
        },
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/missing_data.py"
