#!/usr/bin/env bash
# Install R's rbmi (openpharma/rbmi) into the system R for rbmi_reference.R.
# rbmi is not packaged by Debian and CI cannot fetch from GitHub or CRAN, so CI does not run this:
# the outputs in tests/reference/expected/rbmi/ are committed. (condmean_rederive.R re-derives
# them on Debian's R alone, nlme + yaml, and can run anywhere.)
#
# Built from rbmi commit 5961fa0740d6deb9384ec6bf1041b8bc81686209 (2026-03-05, version 1.6.0.9000),
# on Debian R 4.2.2 with r-cran-mmrm 0.3.18, r-cran-matrix, r-cran-r6, r-cran-pkgload, r-cran-fs,
# r-cran-stringr, r-cran-lifecycle already installed.
#
# Usage: tests/reference/build_rbmi.sh [rbmi git dir]   (a clone or bare mirror of openpharma/rbmi)
set -euo pipefail
repo=${1:-/work/.mirror/openpharma+rbmi/repo}
commit=5961fa0740d6deb9384ec6bf1041b8bc81686209

apt-get update
apt-get install -y r-cran-assertthat r-cran-jinjar

src=$(mktemp -d)
git -C "$repo" archive "$commit" | tar -x -C "$src"
R CMD INSTALL --no-build-vignettes "$src"
Rscript -e 'library(rbmi); cat("rbmi", format(packageVersion("rbmi")), "\n")'

# Then, from the repository root:
#   Rscript tests/reference/rbmi_reference.R tests/reference/cases/btheb/dataset.yaml tests/reference/expected/rbmi
#   Rscript tests/reference/rbmi_reference.R tests/reference/cases/btheb/dataset_ice.yaml tests/reference/expected/rbmi
#   Rscript tests/reference/rbmi_reference.R data/demo/dataset.yaml tests/reference/expected/rbmi bdi
#   Rscript tests/reference/condmean_rederive.R tests/reference/cases/btheb/dataset.yaml /tmp/btheb_rederive.csv \
#     --compare=tests/reference/expected/rbmi/btheb.csv
#   Rscript tests/reference/condmean_rederive.R tests/reference/cases/btheb/dataset_ice.yaml /tmp/btheb_ice_rederive.csv \
#     --compare=tests/reference/expected/rbmi/btheb_ice.csv
#   Rscript tests/reference/condmean_rederive.R data/demo/dataset.yaml /tmp/demo_rederive.csv bdi \
#     --compare=tests/reference/expected/rbmi/demo.csv
