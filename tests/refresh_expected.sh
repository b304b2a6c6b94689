#!/usr/bin/env bash
# Refresh the committed expectations after a deliberate change to the results (README: Reproducibility):
# the default run into tests/expected, the small CI configuration into .test/expected and its panel
# configuration into .test/expected/panel. Commit them with the change that caused them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rm -rf results .test/results
python -m snakemake --cores all -q
python -m pnitrial snapshot results tests/expected
python -m snakemake --directory .test --cores all -q
python -m pnitrial snapshot .test/results .test/expected
rm -rf .test/results
python -m snakemake --directory .test --configfile .test/config/panel.yaml --cores all -q
python -m pnitrial snapshot .test/results .test/expected/panel
