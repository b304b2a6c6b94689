# Reference values from R (lme4 + lmerTest + pbkrtest + emmeans) for pnitrial's tests.
#
# Usage: Rscript tests/reference/lmer_reference.R <codebook.yaml> <out.csv> [random_slope]
#
# Reads the codebook and the raw table itself (its own below-LOD parsing, LOD/sqrt(2)
# substitution and log transform), so agreement checks pnitrial's whole path from
# file to effect, not only its engine. Writes one tidy CSV of every number pnitrial
# reports: fixed effects, variance components, REML criterion, EMMs and contrasts
# under Kenward-Roger, Satterthwaite and asymptotic df, and the arm x visit F test.
#
# The optimiser is run to tight tolerances: the REML optimum is unique and lme4's
# defaults stop about 1e-5 short of it in theta, which is looser than we test.

suppressPackageStartupMessages({
  library(yaml)
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(emmeans)
})

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

args <- commandArgs(trailingOnly = TRUE)
cb_path <- args[1]
out_path <- args[2]
random_slope <- length(args) >= 3 && args[3] == "random_slope"

io <- read_codebook_table(cb_path)
cb <- io$cb
tab <- io$tab
emm_options(pbkrtest.limit = Inf, lmerTest.limit = Inf)
ctl <- tight_control()

cols <- cb$columns
arm_raw <- trimws(tab[[cols$arm]])
trial <- arm_raw %in% c(cb$arms$intervention, cb$arms$control)
d0 <- data.frame(
  participant = trimws(tab[[cols$participant]]),
  arm = factor(arm_raw, levels = c(cb$arms$control, cb$arms$intervention)),
  visit = factor(trimws(tab[[cols$visit]]), levels = unlist(cb$visits)),
  stringsAsFactors = FALSE
)[trial, ]
covs <- unlist(cb$covariates)
for (cv in covs) {
  x <- trimws(tab[[cv]][trial])
  x[missing_cell(x)] <- NA
  num <- suppressWarnings(as.numeric(x))
  d0[[cv]] <- if (all(is.na(x) | !is.na(num))) num else x
}
if (!is.null(cb$visit_times)) d0$time <- unlist(cb$visit_times)[as.character(d0$visit)]

rows <- list()
add <- function(outcome, quantity, name, method, value) {
  rows[[length(rows) + 1]] <<- data.frame(outcome = outcome, quantity = quantity, name = name,
                                          method = method, value = value)
}

for (key in names(cb$outcomes)) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  d <- d0
  d$y <- parse_outcome(tab[[column]][trial], spec)
  d <- d[complete.cases(d[, c("y", covs), drop = FALSE]), ]
  for (cv in covs) if (is.character(d[[cv]])) d[[cv]] <- factor(d[[cv]])
  d$visit <- droplevels(d$visit)
  rhs <- paste(c("arm * visit", covs), collapse = " + ")
  re <- if (random_slope) "(1 + time | participant)" else "(1 | participant)"
  f <- as.formula(paste("y ~", rhs, "+", re))
  m <- lmerTest::lmer(f, data = d, REML = TRUE, control = ctl)

  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  for (i in seq_along(fe)) {
    add(key, "coef", names(fe)[i], "", fe[[i]])
    add(key, "coef_se", names(fe)[i], "", se[[i]])
  }
  vc <- as.data.frame(VarCorr(m))
  add(key, "var_participant", "", "", vc$vcov[1])
  if (random_slope) {
    add(key, "var_slope", "", "", vc$vcov[which(vc$var1 == "time" & is.na(vc$var2))])
    add(key, "cov_intercept_slope", "", "", vc$vcov[which(!is.na(vc$var2))][1])
  }
  add(key, "var_residual", "", "", sigma(m)^2)
  add(key, "reml_criterion", "", "", REMLcrit(m))
  add(key, "singular", "", "", as.numeric(isSingular(m)))
  add(key, "n_obs", "", "", nobs(m))
  th <- getME(m, "theta")
  for (i in seq_along(th)) add(key, "theta", as.character(i), "", th[[i]])

  visits <- levels(d$visit)
  for (mode in c("kenward-roger", "satterthwaite", "asymptotic")) {
    emm <- emmeans(m, ~ arm * visit, lmer.df = mode)
    s <- as.data.frame(summary(emm))
    for (i in seq_len(nrow(s))) {
      nm <- paste(s$arm[i], s$visit[i], sep = "|")
      add(key, "emm", nm, mode, s$emmean[i])
      add(key, "emm_se", nm, mode, s$SE[i])
      add(key, "emm_df", nm, mode, s$df[i])
      add(key, "emm_lower", nm, mode, s[[grep("lower|asymp.LCL", names(s))[1]]][i])
      add(key, "emm_upper", nm, mode, s[[grep("upper|asymp.UCL", names(s))[1]]][i])
    }
    # Grid order: arm varies fastest within visit.
    cell <- function(a, v) (match(v, visits) - 1) * 2 + match(a, c("control", "intervention"))
    ncell <- 2 * length(visits)
    w <- function(pairs) {
      x <- numeric(ncell)
      for (p in pairs) x[cell(p[[1]], p[[2]])] <- x[cell(p[[1]], p[[2]])] + p[[3]]
      x
    }
    base <- visits[1]
    cons <- list()
    for (v in visits[-1]) {
      cons[[paste0("interaction:", v)]] <- w(list(list("intervention", v, 1), list("intervention", base, -1),
                                                  list("control", v, -1), list("control", base, 1)))
      cons[[paste0("within:intervention:", v)]] <- w(list(list("intervention", v, 1),
                                                          list("intervention", base, -1)))
      cons[[paste0("within:control:", v)]] <- w(list(list("control", v, 1), list("control", base, -1)))
      cons[[paste0("between:", v)]] <- w(list(list("intervention", v, 1), list("control", v, -1)))
    }
    ct <- as.data.frame(summary(contrast(emm, method = cons, adjust = "none"), infer = c(TRUE, TRUE)))
    for (i in seq_len(nrow(ct))) {
      nm <- as.character(ct$contrast[i])
      add(key, "estimate", nm, mode, ct$estimate[i])
      add(key, "se", nm, mode, ct$SE[i])
      add(key, "df", nm, mode, ct$df[i])
      add(key, "statistic", nm, mode, ct[[grep("t.ratio|z.ratio", names(ct))[1]]][i])
      add(key, "p", nm, mode, ct$p.value[i])
      add(key, "ci_low", nm, mode, ct[[grep("lower|asymp.LCL", names(ct))[1]]][i])
      add(key, "ci_high", nm, mode, ct[[grep("upper|asymp.UCL", names(ct))[1]]][i])
    }
  }
  # cLDA: baseline in the response, common baseline mean, arm effect after baseline only.
  trt <- character(0)
  for (v in visits[-1]) {
    nm <- paste0("trt_", v)
    d[[nm]] <- as.numeric(d$arm == cb$arms$intervention & d$visit == v)
    trt <- c(trt, nm)
  }
  fc <- as.formula(paste("y ~", paste(c("visit", covs, trt), collapse = " + "), "+", re))
  mc <- lmerTest::lmer(fc, data = d, REML = TRUE, control = ctl)
  vc <- as.data.frame(VarCorr(mc))
  add(key, "clda_var_participant", "", "", vc$vcov[1])
  add(key, "clda_var_residual", "", "", sigma(mc)^2)
  add(key, "clda_reml_criterion", "", "", REMLcrit(mc))
  for (v in visits[-1]) {
    L <- as.numeric(names(fixef(mc)) == paste0("trt_", v))
    nm <- paste0("clda|interaction:", v)
    for (ddf in c("Kenward-Roger", "Satterthwaite")) {
      ct <- contest(mc, L, ddf = ddf, joint = FALSE, confint = TRUE)
      mode <- tolower(ddf)
      add(key, "estimate", nm, mode, ct$Estimate)
      add(key, "se", nm, mode, ct[["Std. Error"]])
      add(key, "df", nm, mode, ct$df)
      add(key, "statistic", nm, mode, ct[["t value"]])
      add(key, "p", nm, mode, ct[["Pr(>|t|)"]])
      add(key, "ci_low", nm, mode, ct$lower)
      add(key, "ci_high", nm, mode, ct$upper)
    }
    est <- sum(L * fixef(mc))
    se_z <- sqrt(drop(t(L) %*% as.matrix(vcov(mc)) %*% L))
    add(key, "estimate", nm, "asymptotic", est)
    add(key, "se", nm, "asymptotic", se_z)
    add(key, "statistic", nm, "asymptotic", est / se_z)
    add(key, "p", nm, "asymptotic", 2 * pnorm(-abs(est / se_z)))
    add(key, "ci_low", nm, "asymptotic", est - qnorm(0.975) * se_z)
    add(key, "ci_high", nm, "asymptotic", est + qnorm(0.975) * se_z)
  }
  # cLDA means by arm and visit: emmeans' reference grid written out as contrasts of the cLDA's
  # coefficients (covariates at their mean, factor levels weighted equally; a shared baseline).
  fn <- names(fixef(mc))
  for (a in c(cb$arms$control, cb$arms$intervention)) {
    for (v in visits) {
      L <- setNames(numeric(length(fn)), fn)
      L["(Intercept)"] <- 1
      if (paste0("visit", v) %in% fn) L[paste0("visit", v)] <- 1
      if (a == cb$arms$intervention && paste0("trt_", v) %in% fn) L[paste0("trt_", v)] <- 1
      for (cv in covs) {
        if (is.factor(d[[cv]])) {
          lev <- levels(d[[cv]])
          for (l in lev[-1]) L[paste0(cv, l)] <- 1 / length(lev)
        } else {
          L[cv] <- mean(d[[cv]])
        }
      }
      nm <- paste(a, v, sep = "|")
      for (ddf in c("Kenward-Roger", "Satterthwaite")) {
        ct <- contest(mc, unname(L), ddf = ddf, joint = FALSE, confint = TRUE)
        mode <- tolower(ddf)
        add(key, "clda_emm", nm, mode, ct$Estimate)
        add(key, "clda_emm_se", nm, mode, ct[["Std. Error"]])
        add(key, "clda_emm_df", nm, mode, ct$df)
        add(key, "clda_emm_lower", nm, mode, ct$lower)
        add(key, "clda_emm_upper", nm, mode, ct$upper)
      }
    }
  }
  # ANCOVA: each later visit on baseline and arm, complete pairs, covariates from baseline.
  base <- d[d$visit == visits[1], c("participant", "arm", "y", covs), drop = FALSE]
  names(base)[names(base) == "y"] <- "baseline"
  for (v in visits[-1]) {
    later <- d[d$visit == v, c("participant", "y")]
    da <- merge(base, later, by = "participant")
    fa <- as.formula(paste("y ~", paste(c("arm", "baseline", covs), collapse = " + ")))
    ma <- lm(fa, data = da)
    co <- summary(ma)$coefficients
    arm_term <- paste0("arm", cb$arms$intervention)
    ci <- confint(ma)[arm_term, ]
    nm <- paste0("ancova|interaction:", v)
    add(key, "estimate", nm, "ols", co[arm_term, "Estimate"])
    add(key, "se", nm, "ols", co[arm_term, "Std. Error"])
    add(key, "df", nm, "ols", df.residual(ma))
    add(key, "statistic", nm, "ols", co[arm_term, "t value"])
    add(key, "p", nm, "ols", co[arm_term, "Pr(>|t|)"])
    add(key, "ci_low", nm, "ols", ci[1])
    add(key, "ci_high", nm, "ols", ci[2])
  }
  for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    a <- anova(m, type = 3, ddf = ddf)
    r <- a["arm:visit", ]
    mode <- tolower(ddf)
    add(key, "F", "arm:visit", mode, r[["F value"]])
    add(key, "F_ndf", "arm:visit", mode, r[["NumDF"]])
    add(key, "F_ddf", "arm:visit", mode, r[["DenDF"]])
    add(key, "F_p", "arm:visit", mode, r[["Pr(>F)"]])
  }
}

res <- do.call(rbind, rows)
res$value <- signif(res$value, 12)
write.csv(res, out_path, row.names = FALSE)
cat(sprintf("wrote %d reference values to %s\n", nrow(res), out_path))
