from pnitrial import steps

steps.log_to(snakemake.log[0])
inputs = {k: v for k, v in snakemake.input.items() if k != "panel"}
inputs["panel"] = list(snakemake.input.panel)
steps.summary(inputs, dict(snakemake.params.config), snakemake.output[0])
