# Re-derivation, in plain R without rbmi, of rbmi_reference.R's conditional-mean imputation with
# jackknife (Wolbers et al. 2022): proves the algorithm that script documents and runs on Debian's R
# alone (nlme, yaml), so CI can re-run it.
#
# Usage: Rscript tests/reference/condmean_rederive.R <codebook.yaml> <out.csv> [outcome] [--compare=<rbmi csv>]
# Writes the same table as rbmi_reference.R's <case>.csv (strategy, delta, visit, quantity, value)
# for MAR, JR, CR, CIR (and "ICE table" with a codebook ICE table), the MAR+delta scan and the deltas under
# each other strategy; with --compare it prints, per quantity, the largest absolute difference from
# rbmi's file and fails (exit 1) if any exceeds 1e-5 (also for the full-data imputed values of
# <rbmi csv>'s _imputed.csv, when present).
#
# Same data, ICE definition and models as rbmi_reference.R, computed by hand:
# - Imputation model: nlme::gls, REML, fixed effects outcome ~ arm + visit + baseline + covariates +
#   baseline:visit + arm:visit, unstructured covariance = corSymm(form = ~ visit index | participant) + varIdent by
#   visit (then polished to the exact REML optimum by Newton steps, see reml_polish), fitted to the
#   observed post-baseline values except, as rbmi's draws (is_mar, get_data(mnar.rm = TRUE)), those
#   at or after the ICE visit of a participant whose strategy is not MAR (both arms); labels that
#   leave out the same values share one fit. With the derived ICE (below) nothing is observed after
#   an ICE, so one fit serves all strategies. With a single post-baseline visit:
#   outcome ~ arm + baseline + covariates with one variance.
# - ICE: without a codebook key `ice`, the first visit of the trailing run of missing values (none if
#   the last visit is observed). With it (see rbmi_reference.R): only the table's participants, at
#   the table's visit; strategies MAR, JR, CR, CIR apply to all of them, "ICE table" gives each its
#   own strategy from the table; everyone else is MAR.
# - For each participant with missing values: mean vectors over the post-baseline visits with the
#   participant's own arm (mu_own) and with arm = control (mu_ref), visits before the ICE are MAR.
#   MAR: mu_own; JR: mu_own before the ICE, mu_ref from it; CR: mu_ref; CIR: before the ICE
#   mu_own, from it mu_own[last MAR visit] + mu_ref[j] - mu_ref[last MAR visit], and mu_ref
#   throughout when the ICE is the first post-baseline visit. The covariance is shared
#   (same_cov), so every strategy keeps Sigma. Imputed value = conditional mean
#   mu_m + Sigma_mo Sigma_oo^-1 (y_o - mu_o), over every observed value: as rbmi's impute(),
#   observed post-ICE values are kept (not imputed), even when they were left out of the fit,
#   and are conditioned on with the strategy's mean. The control arm is its own reference, so all
#   strategies impute it under MAR.
# - ANCOVA per visit by lm: outcome ~ arm + baseline + covariates; trt = arm coefficient; lsm =
#   colMeans of the visit's design with arm set to control / intervention, times beta (se from
#   vcov), i.e. rbmi's "counterfactual" weights.
# - Jackknife: refit gls (covariance re-estimated) without each participant in turn, re-impute
#   the rest, re-run the ANCOVA; se = sqrt((n-1)/n sum (est_-i - mean)^2); the point estimate is
#   the full-data one; normal CI and two-sided p.
# - Delta: after imputation (a scan under MAR, 2 and 5 under JR, CR, CIR, 0, 2, 5 for the ICE table),
#   delta is added to every imputed (originally missing: rbmi's is_missing, never an observed
#   post-ICE value) value of the intervention arm (full data and every jackknife sample).

suppressPackageStartupMessages({
  library(yaml)
  library(nlme)
})

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

all_args <- commandArgs(trailingOnly = TRUE)
compare <- sub("^--compare=", "", grep("^--compare=", all_args, value = TRUE))
args <- grep("^--compare=", all_args, value = TRUE, invert = TRUE)
cb_path <- args[1]
out_path <- args[2]

io <- read_codebook_table(cb_path)
cb <- io$cb
tab <- io$tab
key <- if (length(args) > 2) args[3] else names(cb$outcomes)[vapply(cb$outcomes, function(o) identical(o$transform, "none"), logical(1))][1]
spec <- cb$outcomes[[key]]
column <- if (is.null(spec$column)) key else spec$column
visits <- unlist(cb$visits)
post <- visits[-1]
nv <- length(post)
ctl <- cb$arms$control
itv <- cb$arms$intervention
covs <- unlist(cb$covariates)
base_name <- paste0(key, "_", visits[1])

# ---- data (as rbmi_reference.R) ---------------------------------------------------------------
arm <- trimws(tab[[cb$columns$arm]])
trial <- arm %in% c(itv, ctl)
raw <- data.frame(participant = trimws(tab[[cb$columns$participant]]), arm = arm,
                  visit = trimws(tab[[cb$columns$visit]]), stringsAsFactors = FALSE)
raw$y <- parse_outcome(tab[[column]], spec)
for (cv in covs) {
  x <- trimws(tab[[cv]])
  x[missing_cell(x)] <- NA
  raw[[cv]] <- x
}
raw <- raw[trial, ]
ids <- unique(raw$participant)
pt <- data.frame(participant = ids, stringsAsFactors = FALSE)
pt$arm <- raw$arm[match(ids, raw$participant)]
for (cv in covs) {
  pt[[cv]] <- vapply(ids, function(i) {
    x <- raw[[cv]][raw$participant == i & !is.na(raw[[cv]])]
    if (length(x)) x[1] else NA_character_
  }, character(1), USE.NAMES = FALSE)
}
bl <- raw[raw$visit == visits[1], ]
pt[[base_name]] <- bl$y[match(ids, bl$participant)]
pt <- pt[complete.cases(pt[, c(base_name, covs)]), ]
for (cv in covs) {
  num <- suppressWarnings(as.numeric(pt[[cv]]))
  pt[[cv]] <- if (all(!is.na(num))) num else factor(pt[[cv]])
}
pt$arm <- factor(pt$arm, levels = c(ctl, itv))
pt <- pt[order(pt$participant), ]
n <- nrow(pt)

# participant x visit outcome matrix
Y <- matrix(NA_real_, n, nv, dimnames = list(pt$participant, post))
pr <- raw[raw$visit %in% post & raw$participant %in% pt$participant & !is.na(raw$y), ]
Y[cbind(match(pr$participant, pt$participant), match(pr$visit, post))] <- pr$y
own <- rep(NA_character_, n)  # each participant's strategy from an ICE table (NA: no ICE)
if (is.null(cb$ice)) {
  ice <- apply(Y, 1, function(y) {
    obs <- which(!is.na(y))
    last <- if (length(obs)) max(obs) else 0
    if (last == nv) NA_integer_ else last + 1L
  })
} else {
  it <- read_ice_table(cb, cb_path, raw$participant, post)
  at <- match(pt$participant, it$participant)
  ice <- match(it$visit, post)[at]
  own <- it$own[at]
}

# long grid, participant-major, visit within
long <- pt[rep(seq_len(n), each = nv), ]
long$visit <- factor(rep(post, n), levels = post)
long$pos <- rep(seq_len(nv), n)
long$y <- as.vector(t(Y))
rownames(long) <- NULL
rhs <- c("arm", if (nv > 1) "visit", base_name, covs, if (nv > 1) c(paste0(base_name, ":visit"), "arm:visit"))
f_imp <- as.formula(paste("y ~", paste(rhs, collapse = " + ")))
X_own <- model.matrix(update(f_imp, NULL ~ .), long)
long_ref <- long
long_ref$arm <- factor(ctl, levels = c(ctl, itv))
X_ref <- model.matrix(update(f_imp, NULL ~ .), long_ref)

# ---- imputation model -------------------------------------------------------------------------
# gls's nlminb stops ~2e-8 short of the REML maximum (estimates off by ~3e-5), so its covariance
# is polished by Newton steps on the REML log-likelihood in a log-Cholesky parametrisation
# (Sigma = L L', log diagonal), with the analytic gradient
#   dl/dSigma = sum_i E_i' [-(S_i^-1 - S_i^-1 r_i r_i' S_i^-1) + S_i^-1 X_i A^-1 X_i' S_i^-1] E_i / 2
# (S_i, X_i, r_i: participant i's observed block, design and GLS residuals, A = sum X_i' S_i^-1 X_i)
# and its central-difference Jacobian as Hessian, until the gradient is below 1e-8.
reml_polish <- function(d, S0) {
  X <- model.matrix(f_imp, d)
  y <- d$y
  grp <- split(seq_len(nrow(d)), as.character(d$participant))
  lt <- lower.tri(S0, diag = TRUE)
  th2L <- function(th) {
    L <- matrix(0, nv, nv)
    L[lt] <- th
    diag(L) <- exp(diag(L))
    L
  }
  ev <- function(th, grad) {
    L <- th2L(th)
    S <- L %*% t(L)
    A <- 0
    b <- 0
    ld <- 0
    Si <- vector("list", length(grp))
    for (k in seq_along(grp)) {
      g <- grp[[k]]
      v <- d$pos[g]
      ch <- chol(S[v, v, drop = FALSE])
      Si[[k]] <- chol2inv(ch)
      ld <- ld + 2 * sum(log(diag(ch)))
      W <- Si[[k]] %*% X[g, , drop = FALSE]
      A <- A + crossprod(X[g, , drop = FALSE], W)
      b <- b + crossprod(W, y[g])
    }
    Ainv <- solve(A)
    beta <- drop(Ainv %*% b)
    q <- 0
    G <- matrix(0, nv, nv)
    for (k in seq_along(grp)) {
      g <- grp[[k]]
      v <- d$pos[g]
      r <- y[g] - drop(X[g, , drop = FALSE] %*% beta)
      u <- drop(Si[[k]] %*% r)
      q <- q + sum(r * u)
      if (grad) {
        W <- Si[[k]] %*% X[g, , drop = FALSE]
        G[v, v] <- G[v, v] - 0.5 * (Si[[k]] - tcrossprod(u)) + 0.5 * W %*% Ainv %*% t(W)
      }
    }
    out <- list(ll = -0.5 * (ld + as.numeric(determinant(A)$modulus) + q), beta = beta, S = S)
    if (grad) {
      D <- 2 * G %*% L
      diag(D) <- diag(D) * diag(L)
      out$grad <- D[lt]
    }
    out
  }
  gr <- function(th) ev(th, TRUE)$grad
  L0 <- t(chol(S0))
  diag(L0) <- log(diag(L0))
  th <- L0[lt]
  cur <- ev(th, TRUE)
  for (it in 1:50) {
    if (max(abs(cur$grad)) < 1e-8) break
    h <- 1e-5
    H <- vapply(seq_along(th), function(j) {
      e <- replace(numeric(length(th)), j, h)
      (gr(th + e) - gr(th - e)) / (2 * h)
    }, numeric(length(th)))
    step <- -solve((H + t(H)) / 2, cur$grad)
    for (half in 0:30) {
      cand <- ev(th + step, TRUE)
      if (cand$ll >= cur$ll - 1e-12) break
      step <- step / 2
    }
    th <- th + step
    cur <- cand
  }
  if (max(abs(cur$grad)) >= 1e-6) stop("REML polish did not converge")
  list(beta = cur$beta, S = cur$S)
}

# drop: participant x visit cells left out of the fit (post-ICE values under a non-MAR strategy)
fit_imp <- function(keep, drop = matrix(FALSE, n, nv)) {
  d <- long[long$participant %in% pt$participant[keep] & !is.na(long$y) & !as.vector(t(drop)), ]
  ctl_gls <- glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12,
                        msVerbose = FALSE, returnObject = FALSE)
  if (nv == 1) {
    fit <- gls(f_imp, data = d, method = "REML", control = ctl_gls)
    S <- matrix(fit$sigma^2, 1, 1)
    beta <- coef(fit)
  } else {
    fit <- gls(f_imp, data = d, method = "REML", control = ctl_gls,
               correlation = corSymm(form = ~ pos | participant),
               weights = varIdent(form = ~ 1 | visit))
    cs <- Initialize(corSymm(value = coef(fit$modelStruct$corStruct, unconstrained = FALSE),
                             form = ~ pos | g, fixed = TRUE),
                     data = data.frame(pos = seq_len(nv), g = 1))
    R <- corMatrix(cs)
    if (is.list(R)) R <- R[[1]]
    w <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)[post]
    sds <- fit$sigma * w
    pol <- reml_polish(d, R * outer(sds, sds))
    S <- pol$S
    beta <- setNames(pol$beta, names(coef(fit)))
  }
  stopifnot(identical(names(beta), colnames(X_own)))
  list(beta = beta, S = S)
}

# strategy: one per participant (or one for all); only the missing values are imputed, conditional on
# every observed one (post-ICE ones included), as rbmi's impute()
impute_all <- function(par, keep, strategy) {
  strategies_i <- rep_len(strategy, n)
  Yc <- Y
  for (i in which(keep)) {
    strategy <- if (is.na(ice[i])) "MAR" else strategies_i[i]
    y <- Y[i, ]
    miss <- is.na(y)
    if (!any(miss)) next
    rows <- (i - 1) * nv + seq_len(nv)
    mu_own <- drop(X_own[rows, , drop = FALSE] %*% par$beta)
    mu_ref <- drop(X_ref[rows, , drop = FALSE] %*% par$beta)
    k <- ice[i]
    mar <- if (is.na(k) || strategy == "MAR") rep(TRUE, nv) else seq_len(nv) < k
    mu <- switch(strategy,
      MAR = mu_own,
      JR = ifelse(mar, mu_own, mu_ref),
      CR = if (pt$arm[i] == ctl || all(mar)) mu_own else mu_ref,
      CIR = if (all(mar)) mu_own else if (!any(mar)) mu_ref else {
        last <- max(which(mar))
        ifelse(mar, mu_own, mu_own[last] + mu_ref - mu_ref[last])
      })
    if (pt$arm[i] == ctl) mu <- mu_own
    o <- !miss
    Yc[i, miss] <- if (any(o)) {
      mu[miss] + par$S[miss, o, drop = FALSE] %*% solve(par$S[o, o, drop = FALSE], y[o] - mu[o])
    } else {
      mu[miss]
    }
  }
  Yc
}

ancova_all <- function(Yc, keep) {
  d <- pt[keep, ]
  f <- as.formula(paste("yv ~", paste(c("arm", base_name, covs), collapse = " + ")))
  out <- list()
  for (j in seq_len(nv)) {
    d$yv <- Yc[keep, j]
    m <- lm(f, data = d)
    X <- model.matrix(m)
    a <- paste0("arm", itv)
    X0 <- X
    X0[, a] <- 0
    X1 <- X
    X1[, a] <- 1
    l0 <- colMeans(X0)
    l1 <- colMeans(X1)
    V <- vcov(m)
    out[[post[j]]] <- c(trt = unname(coef(m)[a]), lsm_ref = sum(l0 * coef(m)), lsm_alt = sum(l1 * coef(m)),
                        trt_se = sqrt(V[a, a]), lsm_ref_se = sqrt(drop(l0 %*% V %*% l0)),
                        lsm_alt_se = sqrt(drop(l1 %*% V %*% l1)))
  }
  out
}

# as rbmi_reference.R: a delta scan under MAR, two shifts under JR, CR, CIR, 0, 2, 5 for the ICE table
strategies <- c("MAR", "JR", "CR", "CIR", if (!is.null(cb$ice)) "ICE table")
deltas_of <- function(s) switch(s, MAR = c(0, 1, 2, 3, 4, 5, 6, 8, 10), "ICE table" = c(0, 2, 5), c(2, 5))
analyses <- c(strategies, unlist(lapply(strategies, function(s) paste0(s, "+delta", deltas_of(s)))))
# each label's strategy per participant (MAR without an ICE) and the cells it leaves out of the fit:
# every visit from the ICE on under a non-MAR strategy (rbmi's is_mar); labels leaving out the same
# observed values share their fits
strategy_of <- lapply(setNames(strategies, strategies), function(s) {
  ifelse(is.na(ice), "MAR", if (s == "ICE table") own else s)
})
drop_of <- lapply(strategy_of, function(st) {
  outer(ifelse(st == "MAR" | is.na(ice), nv + 1L, ice), seq_len(nv), "<=") & !is.na(Y)
})
fit_key <- vapply(drop_of, function(dm) paste0("drop:", paste(which(dm), collapse = ",")), character(1))
fits_for <- function(keep) {
  fits <- list()
  for (k in unique(fit_key)) fits[[k]] <- fit_imp(keep, drop_of[[match(k, fit_key)]])
  fits
}
run_sample <- function(keep) {
  fits <- fits_for(keep)
  res <- list()
  add <- is.na(Y) & (pt$arm == itv)
  for (s in strategies) {
    Yc <- impute_all(fits[[fit_key[[s]]]], keep, strategy_of[[s]])
    res[[s]] <- ancova_all(Yc, keep)
    for (d in deltas_of(s)) res[[paste0(s, "+delta", d)]] <- ancova_all(Yc + d * add, keep)
  }
  res
}

full <- run_sample(rep(TRUE, n))
jack <- lapply(seq_len(n), function(i) run_sample(seq_len(n) != i))

rows <- list()
for (a in analyses) {
  for (v in post) {
    for (q in c("trt", "lsm_ref", "lsm_alt")) {
      est <- full[[a]][[v]][[q]]
      ej <- vapply(jack, function(r) r[[a]][[v]][[q]], numeric(1))
      se <- sqrt((n - 1) / n * sum((ej - mean(ej))^2))
      z <- qnorm(0.975)
      vals <- if (q == "trt") {
        c(estimate = est, se = se, ci_low = est - z * se, ci_high = est + z * se, p = 2 * pnorm(-abs(est / se)))
      } else {
        setNames(c(est, se), c(q, paste0(q, "_se")))
      }
      strategy <- if (a %in% strategies) a else sub("\\+delta.*$", "+delta", a)
      delta <- if (a %in% strategies) NA else as.numeric(sub("^.*\\+delta", "", a))
      rows[[length(rows) + 1]] <- data.frame(strategy = strategy, delta = delta, visit = v,
                                             quantity = names(vals), value = unname(vals),
                                             stringsAsFactors = FALSE)
    }
  }
}
res <- do.call(rbind, rows)
out <- res
out$delta <- ifelse(is.na(out$delta), "", sprintf("%.17g", out$delta))
out$value <- sprintf("%.17g", out$value)
write.csv(out, out_path, row.names = FALSE, quote = match(c("strategy", "visit", "quantity"), names(out)))

# the lm complete-data-model ANCOVA on MAR conditional means equals the gls treatment effect
if (nv > 1) {
  par <- fit_imp(rep(TRUE, n))
  cat("gls arm effect at each visit (MAR ANCOVA should equal it):\n")
  print(vapply(post, function(v) {
    L <- X_own[long$visit == v & long$arm == itv, , drop = FALSE][1, ] - X_ref[long$visit == v & long$arm == itv, , drop = FALSE][1, ]
    sum(L * par$beta)
  }, numeric(1)))
}

if (length(compare)) {
  rb <- read.csv(compare, stringsAsFactors = FALSE)
  rb$delta[is.na(rb$delta)] <- -1
  res$delta[is.na(res$delta)] <- -1
  m <- merge(rb, res, by = c("strategy", "delta", "visit", "quantity"), suffixes = c("_rbmi", "_here"))
  stopifnot(nrow(m) == nrow(rb), nrow(m) == nrow(res))
  m$diff <- abs(m$value_rbmi - m$value_here)
  cat("largest |rbmi - re-derived| by strategy and quantity:\n")
  print(xtabs(diff ~ strategy + quantity, aggregate(diff ~ strategy + quantity, m, max)), digits = 3)
  if (max(m$diff) > 1e-5) {
    cat("FAIL: max difference", max(m$diff), "\n")
    quit(status = 1)
  }
  cat("OK: max difference", format(max(m$diff), digits = 3), "\n")
  imp_path <- sub("\\.csv$", "_imputed.csv", compare)
  if (file.exists(imp_path)) {
    ri <- read.csv(imp_path, stringsAsFactors = FALSE)
    fits <- fits_for(rep(TRUE, n))
    worst <- 0
    for (s in strategies) {
      Yc <- impute_all(fits[[fit_key[[s]]]], rep(TRUE, n), strategy_of[[s]])
      r <- ri[ri$strategy == s, ]
      here <- Yc[cbind(match(r$participant, pt$participant), match(r$visit, post))]
      stopifnot(nrow(r) == n * nv, identical(r$imputed, is.na(Y[cbind(match(r$participant, pt$participant),
                                                                         match(r$visit, post))])))
      worst <- max(worst, abs(here - r$value))
    }
    cat("largest |rbmi - re-derived| full-data imputed value:", format(worst, digits = 3), "\n")
    if (worst > 1e-5) quit(status = 1)
  }
}
