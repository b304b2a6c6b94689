# Reference values from lme4 for pnitrial's censored (Tobit) mixed model when nothing is censored.
#
# Usage: Rscript tests/reference/censored_reference.R <codebook.yaml> <out.csv> <outcome> [<outcome> ...]
#
# The cLDA random-intercept model fitted by maximum likelihood (REML = FALSE), every value taken
# as observed (below-LOD cells as LOD/sqrt(2)): with no censored value the Tobit likelihood is
# this Gaussian likelihood, so pnitrial's censored fit must reproduce these estimates and logLik.

suppressPackageStartupMessages({
  library(yaml)
  library(lme4)
})

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

args <- commandArgs(trailingOnly = TRUE)
io <- read_codebook_table(args[1])
cb <- io$cb
tab <- io$tab
list2env(clda_setup(cb, tab), environment())  # d0, trial, covs, trt, f, ctl

rows <- list()
add <- function(outcome, quantity, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(outcome = outcome, quantity = quantity, name = name, value = value)
}
for (key in args[-(1:2)]) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  d <- d0
  d$y <- parse_outcome(tab[[column]][trial], spec)
  d <- d[complete.cases(d[, c("y", covs), drop = FALSE]), ]
  m <- lmer(f, data = d, REML = FALSE, control = ctl)
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  for (i in seq_along(fe)) {
    add(key, "coef", names(fe)[i], fe[[i]])
    add(key, "coef_se", names(fe)[i], se[[i]])
  }
  add(key, "sigma_participant", "", attr(VarCorr(m)$participant, "stddev")[[1]])
  add(key, "sigma_residual", "", sigma(m))
  add(key, "loglik", "", as.numeric(logLik(m)))
}
res <- do.call(rbind, rows)
res$value <- signif(res$value, 12)
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("wrote %d reference values to %s\n", nrow(res), args[2]))
