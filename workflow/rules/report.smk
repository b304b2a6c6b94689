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
    conda:
        ENV
    params:
        config=config,
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
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../scripts/simulate_demo.py"
