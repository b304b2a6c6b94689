rule summary:
    input:
        meta="results/data/meta.json",
        effects=with_outcomes("results/tables/effects.csv"),
        fits=with_outcomes("results/tables/fits.csv"),
        lod="results/tables/lod_counts.csv",
        effect_sizes=with_outcomes("results/tables/effect_sizes.csv"),
        associations=with_outcomes("results/tables/associations.csv"),
        sensitivity=with_outcomes("results/tables/sensitivity.csv"),
        diagnostics=with_outcomes("results/tables/diagnostics.csv"),
        mediation=with_outcomes("results/tables/mediation.csv"),
        panel=panel_summary_inputs(),
        permutation=with_outcomes(permutation_outputs()),
        covariance_compare=with_outcomes(covariance_compare_outputs()),
        missing_data=with_outcomes(missing_data_outputs()[:1]),
        tipping_point=with_outcomes(missing_data_outputs()[1:2]),
        tipping_png=with_outcomes(
            png_of([f for f in missing_data_outputs() if f.endswith(".png")])
        ),
        forest_png=with_outcomes(png_of("results/figures/forest.png")),
        flow_png=with_outcomes(png_of("results/figures/flow.png")),
        trajectory_png=with_outcomes(
            png_of(
                expand("results/figures/trajectory/{outcome}.png", outcome=OUTCOMES)
            )
        ),
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
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
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
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        seed=config["seed"],
    script:
        "../scripts/simulate_demo.py"


# Provenance names the machine and commit, so it is kept out of the manifest.
rule provenance:
    input:
        codebook=config["dataset"],
        table=TABLE,
        validated="results/data/meta.json",  # nothing is written for input that fails validation
    output:
        report(
            "results/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "results/logs/provenance.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        config=config,
        workflow_dir=workflow.basedir,
    script:
        "../scripts/provenance.py"


rule manifest:
    input:
        all_outputs(),
        intermediate_outputs(),
    output:
        "results/MANIFEST.sha256",
    log:
        "results/logs/manifest.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    script:
        "../scripts/manifest.py"


# `snakemake --cores all verify`: compare results/ with the committed expectation, explaining differences.
rule verify:
    input:
        manifest="results/MANIFEST.sha256",
        expected=config["verify"]["expected"],
    log:
        "results/logs/verify.log",
    conda:
        ENV
    resources:
        mem_mb=mem_mb(300, 60),
        runtime=10,
    params:
        results=lambda wildcards, input: os.path.dirname(input.manifest),
        mode=config["verify"]["mode"],
    script:
        "../scripts/verify.py"
