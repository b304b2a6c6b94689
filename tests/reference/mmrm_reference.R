# Reference values from R's mmrm (openpharma; not packaged by Debian, so CI uses the committed output) for
# pnitrial's MMRM: the lmm (arm x visit) and clda estimands under residual covariance structures.
#
# Usage: Rscript tests/reference/mmrm_reference.R <codebook.yaml> <out.csv> [structure ...]
# (default structures: the default chain us, toeph, ar1h, cs).
#
# Reads the codebook and raw table itself (common.R), as lmer_reference.R does. For every outcome,
# structure and df method (Kenward-Roger, Kenward-Roger-Linear, Satterthwaite) it writes the
# intervention effect at every later visit (estimate, SE, df, p), the arm x visit F test of the
# lmm, its estimated marginal means and within-arm and between-arm contrasts (emmeans on the mmrm
# fit, which uses mmrm's adjusted covariance and df), logLik, AIC and BIC, and whether mmrm converged. A structure mmrm cannot fit is a row
# with converged = FALSE, never an error. The optimiser is pushed to tight tolerances.

suppressPackageStartupMessages({
  library(yaml)
  library(mmrm)
  library(emmeans)
})

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

args <- commandArgs(trailingOnly = TRUE)
cb_path <- args[1]
out_path <- args[2]
structures <- if (length(args) > 2) args[-(1:2)] else c("us", "toeph", "ar1h", "cs")
methods <- c("Kenward-Roger", "Kenward-Roger-Linear", "Satterthwaite")

io <- read_codebook_table(cb_path)
cb <- io$cb
tab <- io$tab
setup <- clda_setup(cb, tab)
covs <- setup$covs

rows <- list()
add <- function(...) rows[[length(rows) + 1]] <<- data.frame(..., stringsAsFactors = FALSE)

# mmrm's default optimiser (L-BFGS-B) at its tolerance floor, then restarted from its own optimum
# (L-BFGS-B, and nlminb on TMB's exact Hessian) while the REML criterion still improves: with many
# covariance parameters one L-BFGS-B run stops up to 1e-5 short, looser than the tests.
fit_one <- function(f, d, method) {
  m <- if (method == "Satterthwaite") "Satterthwaite" else "Kenward-Roger"
  v <- if (method == "Satterthwaite") "Asymptotic" else method
  tight <- list(factr = 1e-4, pgtol = 0, maxit = 1e4)
  fit_from <- function(start, optimizers) {
    ctl <- if (is.null(optimizers)) {
      mmrm_control(method = m, vcov = v, start = start, optimizer_control = tight)
    } else {
      mmrm_control(method = m, vcov = v, start = start, optimizers = optimizers)
    }
    tryCatch(mmrm(f, data = d, reml = TRUE, control = ctl), error = function(e) NULL)
  }
  best <- fit_from(std_start, NULL)
  if (is.null(best)) return(NULL)
  newton <- mmrm:::h_get_optimizers("nlminb", optimizer_control = list(rel.tol = 1e-12, iter.max = 1000,
                                                                      eval.max = 2000))
  for (round in 1:10) {
    gain <- 0
    for (opt in list(NULL, newton)) {
      cand <- fit_from(component(best, "theta_est"), opt)
      if (!is.null(cand) && as.numeric(logLik(cand)) > as.numeric(logLik(best))) {
        gain <- gain + as.numeric(logLik(cand)) - as.numeric(logLik(best))
        best <- cand
      }
    }
    if (gain < 1e-11) break
  }
  best
}

for (key in names(cb$outcomes)) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  d <- setup$d0
  d$y <- parse_outcome(tab[[column]][setup$trial], spec)
  d <- d[complete.cases(d[, c("y", covs), drop = FALSE]), ]
  for (cv in covs) if (is.character(d[[cv]])) d[[cv]] <- factor(d[[cv]])
  d$visit <- droplevels(d$visit)
  d$participant <- factor(d$participant)
  d$arm <- factor(d$arm, levels = c(cb$arms$control, cb$arms$intervention))
  visits <- levels(d$visit)
  for (s in structures) {
    term <- paste0(s, "(visit | participant)")
    forms <- list(
      lmm = as.formula(paste("y ~", paste(c("arm * visit", covs), collapse = " + "), "+", term)),
      clda = as.formula(paste("y ~", paste(c("visit", covs, setup$trt[setup$trt %in% paste0("trt_", visits)]),
                                           collapse = " + "), "+", term))
    )
    for (est in names(forms)) {
      for (method in methods) {
        fit <- fit_one(forms[[est]], d, method)
        ok <- !is.null(fit) && isTRUE(component(fit, "convergence") == 0)
        add(outcome = key, estimand = est, structure = s, method = method, quantity = "converged",
            name = "", value = as.numeric(ok))
        if (!ok) next
        add(outcome = key, estimand = est, structure = s, method = method, quantity = "loglik",
            name = "", value = as.numeric(logLik(fit)))
        add(outcome = key, estimand = est, structure = s, method = method, quantity = "aic", name = "", value = AIC(fit))
        add(outcome = key, estimand = est, structure = s, method = method, quantity = "bic", name = "", value = BIC(fit))
        beta <- component(fit, "beta_est")
        inter <- if (est == "lmm") {
          paste0("arm", cb$arms$intervention, ":visit", visits[-1])
        } else {
          paste0("trt_", visits[-1])
        }
        for (i in seq_along(inter)) {
          L <- as.numeric(names(beta) == inter[i])
          if (sum(L) != 1) next
          ct <- df_1d(fit, L)
          nm <- paste0(est, "|interaction:", visits[-1][i])
          for (q in c("est", "se", "df", "p_val")) {
            add(outcome = key, estimand = est, structure = s, method = method,
                quantity = c(est = "estimate", se = "se", df = "df", p_val = "p")[[q]], name = nm, value = ct[[q]])
          }
        }
        if (est == "lmm") {
          emm <- emmeans(fit, ~ arm * visit)
          s_emm <- as.data.frame(summary(emm))
          role <- ifelse(s_emm$arm == cb$arms$intervention, "intervention", "control")
          for (i in seq_len(nrow(s_emm))) {
            nm <- paste0("emm|", role[i], "|", s_emm$visit[i])
            for (q in c("emmean", "SE", "df")) {
              add(outcome = key, estimand = est, structure = s, method = method,
                  quantity = c(emmean = "estimate", SE = "se", df = "df")[[q]], name = nm, value = s_emm[[q]][i])
            }
          }
          # grid order: arm varies fastest within visit, control first
          cell <- function(a, v) (match(v, visits) - 1) * 2 + match(a, c("control", "intervention"))
          w <- function(pairs) {
            x <- numeric(2 * length(visits))
            for (p in pairs) x[cell(p[[1]], p[[2]])] <- x[cell(p[[1]], p[[2]])] + p[[3]]
            x
          }
          cons <- list()
          for (v in visits[-1]) {
            cons[[paste0("within:intervention:", v)]] <- w(list(list("intervention", v, 1),
                                                                list("intervention", visits[1], -1)))
            cons[[paste0("within:control:", v)]] <- w(list(list("control", v, 1), list("control", visits[1], -1)))
            cons[[paste0("between:", v)]] <- w(list(list("intervention", v, 1), list("control", v, -1)))
          }
          ct <- as.data.frame(summary(contrast(emm, method = cons, adjust = "none")))
          for (i in seq_len(nrow(ct))) {
            nm <- paste0("lmm|", ct$contrast[i])
            for (q in c("estimate", "SE", "df", "p.value")) {
              add(outcome = key, estimand = est, structure = s, method = method,
                  quantity = c(estimate = "estimate", SE = "se", df = "df", p.value = "p")[[q]], name = nm,
                  value = ct[[q]][i])
            }
          }
          Lm <- t(sapply(inter, function(n) as.numeric(names(beta) == n)))
          if (is.null(dim(Lm))) Lm <- matrix(Lm, nrow = 1)
          ft <- df_md(fit, Lm)
          for (q in c("num_df", "denom_df", "f_stat", "p_val")) {
            add(outcome = key, estimand = est, structure = s, method = method, quantity = paste0("F_", q),
                name = "arm:visit", value = ft[[q]])
          }
        }
      }
    }
  }
}

out <- do.call(rbind, rows)
out$value <- trimws(formatC(out$value, digits = 15, format = "g"))
write.csv(out, out_path, row.names = FALSE, quote = TRUE)
