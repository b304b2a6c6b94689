from pathlib import Path

from pnitrial import steps
from pnitrial.data.simulate import write_demo

steps.log_to(snakemake.log[0])
write_demo(Path(snakemake.output.table).parent, snakemake.params.seed)
