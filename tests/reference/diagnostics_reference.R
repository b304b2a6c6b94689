# Reference values from lme4 for pnitrial's diagnostics of the primary (cLDA) mixed model.
#
# Usage: Rscript tests/reference/diagnostics_reference.R <codebook.yaml> <out.csv> <outcome> [<outcome> ...]
#
# For each outcome: fitted(), residuals() and ranef() of the cLDA fit, and for every participant
# the fixed effects refitted without that participant, giving the participant-level Cook's
# distance (beta - beta_(i))' V^-1 (beta - beta_(i)) / p with V = vcov of the full fit (as
# influence.ME's cooks.distance of influence(model, group = "participant")).
# Rows are keyed by participant and visit of this simulated table; nothing here is real data.

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
add <- function(outcome, quantity, participant, visit, value) {
  rows[[length(rows) + 1]] <<- data.frame(outcome = outcome, quantity = quantity, participant = participant,
                                          visit = visit, value = value)
}
for (key in args[-(1:2)]) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  d <- d0
  d$y <- parse_outcome(tab[[column]][trial], spec)
  d <- d[complete.cases(d[, c("y", covs), drop = FALSE]), ]
  m <- lmer(f, data = d, REML = TRUE, control = ctl)
  add(key, "fitted", d$participant, as.character(d$visit), fitted(m))
  add(key, "residual", d$participant, as.character(d$visit), residuals(m))
  re <- ranef(m)$participant
  add(key, "ranef", rownames(re), "", re[, 1])
  beta <- fixef(m)
  vinv <- solve(as.matrix(vcov(m)))
  for (p in unique(d$participant)) {
    mi <- lmer(f, data = d[d$participant != p, ], REML = TRUE, control = ctl)
    delta <- beta - fixef(mi)
    add(key, "cooks_distance", p, "", drop(t(delta) %*% vinv %*% delta) / length(beta))
    add(key, "interaction_change", p, "", -delta[[trt[length(trt)]]])
  }
}
res <- do.call(rbind, rows)
res$value <- signif(res$value, 12)
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("wrote %d reference values to %s\n", nrow(res), args[2]))
