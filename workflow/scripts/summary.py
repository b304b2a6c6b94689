from pnitrial import steps

steps.log_to(snakemake.log[0])
# optional inputs come as lists (empty for a trial without them)
inputs = {k: v if isinstance(v, str) else next(iter(v), None) for k, v in snakemake.input.items()}
inputs["panel"] = list(snakemake.input.panel)
inputs["trajectory_png"] = list(snakemake.input.trajectory_png)
inputs["permutation"] = next(iter(snakemake.input.permutation), None)
steps.summary(inputs=inputs, config=dict(snakemake.params.config), out=snakemake.output[0])
