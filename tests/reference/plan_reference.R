# Reference values from base R for the analysis-plan tables of pnitrial.
#
# Usage: Rscript tests/reference/plan_reference.R <codebook.yaml> <out.csv> [x_family] [y_family]
#
# Per outcome: pooled baseline SD of the two trial arms (the denominator of the standardised
# intervention effect). Per biomarker x clinical pair: the repeated-measures correlation as the
# ANCOVA lm(y ~ participant + x) of Bakdash & Marusich (2017), with the rmcorr >= 0.5.4 interval
# (Fisher z with n = df + 2); Pearson and Spearman correlations of the first-to-last-visit changes
# within the intervention arm with cor.test (Spearman with exact = FALSE). Per outcome, on the
# change scores of the participants with the first and last visit: wilcox.test(conf.int = TRUE)
# (Hodges-Lehmann shift), the pooled t.test, and the arm x visit F of the mixed ANOVA
# aov(y ~ arm * visit + Error(participant / visit)). Mediation of each clinical change by the
# oxytocin change: the a, b, c and c' paths by lm with the baselines as covariates.

suppressPackageStartupMessages(library(yaml))
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

args <- commandArgs(trailingOnly = TRUE)
io <- read_codebook_table(args[1])
cb <- io$cb
tab <- io$tab
xfam <- if (length(args) > 2) args[3] else "biomarker"
yfam <- if (length(args) > 3) args[4] else "clinical"
rows <- list()
add <- function(analysis, x, y, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(analysis = analysis, x = x, y = y, quantity = quantity, value = value)
}

pid <- trimws(tab[[cb$columns$participant]])
arm <- trimws(tab[[cb$columns$arm]])
visit <- trimws(tab[[cb$columns$visit]])
trial <- arm %in% c(cb$arms$intervention, cb$arms$control)
values <- list()
for (key in names(cb$outcomes)) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  values[[key]] <- parse_outcome(tab[[column]], spec)
}

first <- cb$visits[[1]]
last <- cb$visits[[length(cb$visits)]]
for (key in names(cb$outcomes)) {
  y <- values[[key]]
  a <- y[trial & visit == first & arm == cb$arms$intervention & !is.na(y)]
  b <- y[trial & visit == first & arm == cb$arms$control & !is.na(y)]
  sp <- sqrt(((length(a) - 1) * var(a) + (length(b) - 1) * var(b)) / (length(a) + length(b) - 2))
  add("baseline_sd", key, "", "sd", sp)
}

fam <- vapply(cb$outcomes, function(s) s$family, "")
z <- qnorm(0.975)
for (xk in names(fam)[fam == xfam]) for (yk in names(fam)[fam == yfam]) {
  d <- data.frame(pid = pid, arm = arm, visit = visit, x = values[[xk]], y = values[[yk]])[trial, ]
  d <- d[!is.na(d$x) & !is.na(d$y), ]
  fit <- lm(y ~ factor(pid) + x, data = d)
  av <- anova(fit)
  ssx <- av["x", "Sum Sq"]
  ssr <- av["Residuals", "Sum Sq"]
  df <- av["Residuals", "Df"]
  r <- sign(coef(fit)[["x"]]) * sqrt(ssx / (ssx + ssr))
  add("rm_corr", xk, yk, "r", r)
  add("rm_corr", xk, yk, "df", df)
  add("rm_corr", xk, yk, "p", av["x", "Pr(>F)"])
  add("rm_corr", xk, yk, "ci_low", tanh(atanh(r) - z / sqrt(df + 2 - 3)))
  add("rm_corr", xk, yk, "ci_high", tanh(atanh(r) + z / sqrt(df + 2 - 3)))

  arm1 <- d[d$arm == cb$arms$intervention, ]
  pre <- arm1[arm1$visit == first, ]
  post <- arm1[arm1$visit == last, ]
  m <- merge(pre, post, by = "pid", suffixes = c("_0", "_1"))
  dx <- m$x_1 - m$x_0
  dy <- m$y_1 - m$y_0
  pe <- cor.test(dx, dy, method = "pearson")
  add("change_pearson", xk, yk, "r", unname(pe$estimate))
  add("change_pearson", xk, yk, "df", unname(pe$parameter))
  add("change_pearson", xk, yk, "p", pe$p.value)
  add("change_pearson", xk, yk, "ci_low", pe$conf.int[1])
  add("change_pearson", xk, yk, "ci_high", pe$conf.int[2])
  sp <- cor.test(dx, dy, method = "spearman", exact = FALSE)
  add("change_spearman", xk, yk, "r", unname(sp$estimate))
  add("change_spearman", xk, yk, "p", sp$p.value)
  add("change_spearman", xk, yk, "n", length(dx))
}
# Sensitivity: change scores (first to last visit, participants with both) intervention vs control.
for (key in names(cb$outcomes)) {
  d <- data.frame(pid = pid, arm = arm, visit = visit, y = values[[key]])[trial, ]
  d <- d[!is.na(d$y) & d$visit %in% c(first, last), ]
  both <- names(which(table(d$pid) == 2))
  d <- d[d$pid %in% both, ]
  pre <- d[d$visit == first, ]
  post <- d[d$visit == last, ]
  m <- merge(pre, post, by = c("pid", "arm"), suffixes = c("_0", "_1"))
  ch <- m$y_1 - m$y_0
  a <- ch[m$arm == cb$arms$intervention]
  b <- ch[m$arm == cb$arms$control]
  w <- suppressWarnings(wilcox.test(a, b, conf.int = TRUE))
  add("hodges_lehmann", key, "", "estimate", unname(w$estimate))
  add("hodges_lehmann", key, "", "ci_low", w$conf.int[1])
  add("hodges_lehmann", key, "", "ci_high", w$conf.int[2])
  add("hodges_lehmann", key, "", "p", w$p.value)
  add("hodges_lehmann", key, "", "W", unname(w$statistic))
  tt <- t.test(a, b, var.equal = TRUE)
  add("change_t", key, "", "estimate", mean(a) - mean(b))
  add("change_t", key, "", "ci_low", tt$conf.int[1])
  add("change_t", key, "", "ci_high", tt$conf.int[2])
  d$pid <- factor(d$pid)
  d$visit <- factor(d$visit, levels = c(first, last))
  d$arm <- factor(d$arm)
  fit <- summary(aov(y ~ arm * visit + Error(pid / visit), data = d))
  within <- fit[["Error: pid:visit"]][[1]]
  row <- grep("arm:visit", rownames(within))
  add("mixed_anova", key, "", "F", within[row, "F value"])
  add("mixed_anova", key, "", "df2", within["Residuals", "Df"])
  add("mixed_anova", key, "", "p", within[row, "Pr(>F)"])
}
# Mediation paths by least squares: x = arm, m and y = changes, baselines m0 and y0 as covariates.
med_y <- names(fam)[fam == yfam]
for (yk in med_y) {
  mk <- "oxytocin"
  if (is.null(values[[mk]])) break
  w <- list()
  for (nm in c("m", "y")) {
    key <- if (nm == "m") mk else yk
    d <- data.frame(pid = pid, arm = arm, visit = visit, v = values[[key]])[trial, ]
    pre <- d[d$visit == first & !is.na(d$v), ]
    post <- d[d$visit == last & !is.na(d$v), ]
    mm <- merge(pre, post, by = c("pid", "arm"), suffixes = c("_0", "_1"))
    w[[nm]] <- data.frame(pid = mm$pid, arm = mm$arm, ch = mm$v_1 - mm$v_0, base = mm$v_0)
  }
  md <- merge(w$m, w$y, by = c("pid", "arm"), suffixes = c("_m", "_y"))
  md <- data.frame(x = as.numeric(md$arm == cb$arms$intervention), m = md$ch_m, y = md$ch_y,
                   m0 = md$base_m, y0 = md$base_y)
  fa <- summary(lm(m ~ x + m0 + y0, data = md))$coefficients
  fb <- summary(lm(y ~ x + m + m0 + y0, data = md))$coefficients
  fc <- summary(lm(y ~ x + m0 + y0, data = md))$coefficients
  fm <- summary(lm(y ~ m + m0 + y0, data = md))$coefficients
  for (q in list(list("a", fa, "x"), list("b", fb, "m"), list("c", fc, "x"), list("c_direct", fb, "x"),
                 list("m_only", fm, "m"))) {
    add("mediation", mk, yk, paste0(q[[1]], "_estimate"), q[[2]][q[[3]], "Estimate"])
    add("mediation", mk, yk, paste0(q[[1]], "_se"), q[[2]][q[[3]], "Std. Error"])
    add("mediation", mk, yk, paste0(q[[1]], "_p"), q[[2]][q[[3]], "Pr(>|t|)"])
  }
  add("mediation", mk, yk, "indirect", fa["x", "Estimate"] * fb["m", "Estimate"])
  add("mediation", mk, yk, "n", nrow(md))
}
res <- do.call(rbind, rows)
res$value <- signif(res$value, 12)
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("wrote %d reference values to %s\n", nrow(res), args[2]))
