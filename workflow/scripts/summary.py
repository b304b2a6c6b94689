from pnitrial import steps

steps.log_to(snakemake.log[0])
inputs = {k: v for k, v in snakemake.input.items() if k not in ("panel", "permutation")}
inputs["panel"] = list(snakemake.input.panel)
inputs["permutation"] = next(iter(snakemake.input.permutation), None)
steps.summary(inputs, dict(snakemake.params.config), snakemake.output[0])
