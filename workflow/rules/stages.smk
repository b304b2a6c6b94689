# scatter.jobs: per-stage (the workstation default) runs each per-outcome stage as one job over all
# outcomes, paying Python's start-up once; per-outcome (a cluster) keeps one job per outcome. Both
# rules of a pair make the same files, byte for byte; the rule order picks one.
if config["scatter"]["jobs"] == "per-outcome":

    ruleorder: fit_outcome > fit_outcomes
    ruleorder: trajectory_figure > trajectory_figures
    ruleorder: sensitivity_figure > sensitivity_figures

else:

    ruleorder: fit_outcomes > fit_outcome
    ruleorder: trajectory_figures > trajectory_figure
    ruleorder: sensitivity_figures > sensitivity_figure


rule fit_outcomes:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
    output:
        expand("results/models/{outcome}.json", outcome=OUTCOMES),
    log:
        "results/logs/fit_outcomes.log",
    benchmark:
        "results/benchmarks/fit_outcomes.tsv"
    priority: 10
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(500, 150),
        runtime=lambda wildcards, attempt: 10 + 2 * len(OUTCOMES),
    params:
        outcomes=OUTCOMES,
        ddf=config["inference"]["ddf"],
        alpha=config["inference"]["alpha"],
        random_slope=config["model"]["random_slope"],
        covariance=config["model"]["covariance"],
        covariance_fallback=config["model"]["covariance_fallback"],
        reml=config["model"]["reml"],
        primary=config["analysis"]["primary"],
        lod_method=config["lod"]["method"],
    script:
        "../scripts/fit_outcomes.py"


rule trajectory_figures:
    input:
        frame="results/data/long.csv",
        meta="results/data/meta.json",
        emmeans="results/tables/emmeans.csv",
    output:
        [
            report(
                f"results/figures/trajectory/{outcome}.{ext}",
                caption="../report/trajectory.rst",
                category="Figures",
                subcategory="Trajectories",
                labels={"outcome": outcome},
            )
            for outcome in OUTCOMES
            for ext in FORMATS
        ],
    log:
        "results/logs/trajectory_figures.log",
    benchmark:
        "results/benchmarks/trajectory_figures.tsv"
    priority: 3
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        outcomes=OUTCOMES,
        stems=[f"results/figures/trajectory/{outcome}" for outcome in OUTCOMES],
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/trajectory_figures.py"


rule sensitivity_figures:
    input:
        table="results/tables/sensitivity.csv",
        meta="results/data/meta.json",
    output:
        [
            report(
                f"results/figures/sensitivity/{outcome}.{ext}",
                caption="../report/sensitivity_figure.rst",
                category="Figures",
                subcategory="Sensitivity",
                labels={"outcome": outcome},
            )
            for outcome in OUTCOMES
            for ext in FORMATS
        ],
    log:
        "results/logs/sensitivity_figures.log",
    benchmark:
        "results/benchmarks/sensitivity_figures.tsv"
    priority: 3
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        outcomes=OUTCOMES,
        stems=[f"results/figures/sensitivity/{outcome}" for outcome in OUTCOMES],
        formats=FORMATS,
        dpi=config["figures"]["dpi"],
        alpha=config["inference"]["alpha"],
    script:
        "../scripts/sensitivity_figures.py"
