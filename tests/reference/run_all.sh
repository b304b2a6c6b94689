#!/usr/bin/env bash
# Regenerate every R reference CSV (Debian R with lme4, lmerTest, pbkrtest, emmeans, yaml).
# Usage: tests/reference/run_all.sh [outdir]   (default: tests/reference/expected)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/expected}
mkdir -p "$out"
cd "$root"
Rscript "$here/lmer_reference.R" data/demo/dataset.yaml "$out/demo.csv"
Rscript "$here/simple_reference.R" data/demo/dataset.yaml "$out/simple.csv"
Rscript "$here/plan_reference.R" data/demo/dataset.yaml "$out/plan.csv"
Rscript "$here/diagnostics_reference.R" data/demo/dataset.yaml "$out/diagnostics.csv" oxytocin bdi
Rscript "$here/censored_reference.R" data/demo/dataset.yaml "$out/censored.csv" oxytocin tnfa bdi
for case in "$here"/cases/*/; do
  [ -d "$case" ] || continue
  name=$(basename "$case")
  extra=""
  [ -f "$case/random_slope" ] && extra=random_slope
  Rscript "$here/lmer_reference.R" "$case/dataset.yaml" "$out/$name.csv" $extra
done
