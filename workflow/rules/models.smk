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
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        ddf=config["inference"]["ddf"],
        alpha=config["inference"]["alpha"],
        random_slope=config["model"]["random_slope"],
        primary=config["analysis"]["primary"],
    script:
        "../scripts/fit_outcome.py"
