# Re-derive the unstructured MMRM of R's mmrm with Debian's nlme, for CI (which cannot build mmrm).
#
# Usage: Rscript tests/reference/gls_rederive.R <codebook.yaml> <out.csv>
#
# nlme::gls with corSymm (a free correlation per pair of visits) and varIdent (a variance per visit)
# by REML is the same model as mmrm's us(visit | participant): its coefficients and model-based
# standard errors must equal the committed mmrm values (tests/reference/expected/mmrm/), which
# tests/reference/compare_gls.py checks. Both estimands: lmm (arm x visit) and clda.

suppressPackageStartupMessages({
  library(yaml)
  library(nlme)
})

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

args <- commandArgs(trailingOnly = TRUE)
io <- read_codebook_table(args[1])
cb <- io$cb
tab <- io$tab
setup <- clda_setup(cb, tab)
covs <- setup$covs
ctl <- glsControl(maxIter = 1000, msMaxIter = 5000, tolerance = 1e-14, msTol = 1e-15, opt = "optim", optimMethod = "BFGS")

rows <- list()
for (key in names(cb$outcomes)) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  d <- setup$d0
  d$y <- parse_outcome(tab[[column]][setup$trial], spec)
  d <- d[complete.cases(d[, c("y", covs), drop = FALSE]), ]
  for (cv in covs) if (is.character(d[[cv]])) d[[cv]] <- factor(d[[cv]])
  d$visit <- droplevels(d$visit)
  d$vi <- as.integer(d$visit)
  d$participant <- factor(d$participant)
  d$arm <- factor(d$arm, levels = c(cb$arms$control, cb$arms$intervention))
  d <- d[order(d$participant, d$vi), ]
  visits <- levels(d$visit)
  forms <- list(
    lmm = as.formula(paste("y ~", paste(c("arm * visit", covs), collapse = " + "))),
    clda = as.formula(paste("y ~", paste(c("visit", covs, setup$trt[setup$trt %in% paste0("trt_", visits)]),
                                         collapse = " + ")))
  )
  for (est in names(forms)) {
    fit <- gls(forms[[est]], data = d, method = "REML", control = ctl,
               correlation = corSymm(form = ~ vi | participant), weights = varIdent(form = ~ 1 | visit))
    beta <- coef(fit)
    se <- sqrt(diag(vcov(fit)))
    inter <- if (est == "lmm") paste0("arm", cb$arms$intervention, ":visit", visits[-1]) else paste0("trt_", visits[-1])
    for (i in seq_along(inter)) {
      if (!inter[i] %in% names(beta)) next
      nm <- paste0(est, "|interaction:", visits[-1][i])
      rows[[length(rows) + 1]] <- data.frame(outcome = key, estimand = est, quantity = c("estimate", "se"),
                                             name = nm, value = c(beta[[inter[i]]], se[[inter[i]]]))
    }
  }
}
out <- do.call(rbind, rows)
out$value <- trimws(formatC(out$value, digits = 15, format = "g"))
write.csv(out, args[2], row.names = FALSE)
