rule summary:
    input:
        meta="results/data/meta.json",
        effects="results/tables/effects.csv",
        fits="results/tables/fits.csv",
        lod="results/tables/lod_counts.csv",
    output:
        report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/summary.log",
    params:
        config=config,
    conda:
        ENV
    script:
        "../scripts/summary.py"


# Not part of `all`: regenerates the bundled trial from config["seed"] into results/simulated/.
rule simulate_demo:
    output:
        table="results/simulated/trial.csv",
        codebook="results/simulated/dataset.yaml",
        truth="results/simulated/truth.yaml",
    log:
        "results/logs/simulate_demo.log",
    params:
        seed=config["seed"],
    conda:
        ENV
    script:
        "../scripts/simulate_demo.py"
