# Reference values from R's rbmi (openpharma/rbmi; not packaged by Debian and not fetchable in CI, so
# the output is committed; see build_rbmi.sh for the exact source commit and install commands) for
# pnitrial's reference-based multiple imputation: conditional-mean imputation with jackknife
# (Wolbers et al. 2022, Pharm Stat 21:1246) under MAR, JR, CR and CIR, plus a MAR delta-adjusted
# tipping-point scan.
#
# Usage: Rscript tests/reference/rbmi_reference.R <codebook.yaml> <out_dir> [outcome] [--stock]
# Writes <out_dir>/<case>.csv and <out_dir>/<case>_imputed.csv, where <case> is the codebook's
# parent folder name ("demo" for data/demo/dataset.yaml), followed by "_" and the file stem without a
# leading "dataset_" when the codebook is not named dataset.yaml ("btheb_ice" for
# cases/btheb/dataset_ice.yaml). --stock keeps rbmi's own mmrm optimiser settings
# (default: pushed to the REML optimum, see "rbmi" below).
#
# The analysis, exactly:
# - Outcome: the one named on the command line, else the first codebook outcome with
#   `transform: none`; cells parsed as pnitrial does (common.R).
# - Data: randomised participants only (codebook arms intervention + control; any other arm,
#   e.g. "healthy", is dropped). <outcome>_<baseline visit> (e.g. bdi_pre) = the outcome at the
#   first codebook visit; participants without it, or with a missing covariate, are dropped.
#   Covariates are participant-level (first non-missing cell of the participant); numeric if every
#   cell parses as a number, else a factor. Response = the outcome at each post-baseline visit,
#   long format on the complete participant x post-baseline-visit grid (absent rows become NA rows,
#   as rbmi requires). arm = factor(levels = c(control, intervention)), visit = factor in codebook
#   order, participant = factor.
# - Imputation model: rbmi::draws with method_condmean(type = "jackknife", covariance = "us",
#   REML = TRUE, same_cov = TRUE). rbmi builds the fixed effects as
#   as_simple_formula(outcome, c(group, visit, covariates)) (longData.R), so
#   set_vars(covariates = c(<baseline>, <codebook covariates>, "<baseline>:visit", "arm:visit")) gives
#   outcome ~ 1 + arm + visit + <baseline> + <covariates> + <baseline>:visit + arm:visit, a shared unstructured
#   covariance over the post-baseline visits (mmrm, REML; optimiser tightened unless --stock).
#   The jackknife refits this model (fixed effects and covariance) without each participant.
#   With a single post-baseline visit (demo) there is no visit factor to contrast: rbmi still adds
#   `visit` to the formula, and a one-level factor cannot be expanded by model.matrix, so the visit
#   column is given an explicit zero-column contrasts attribute; the model is
#   then outcome ~ 1 + arm + <baseline> + <covariates> with a 1 x 1 covariance (see below).
# - Intercurrent events, without a codebook key `ice`: the ICE visit of a participant is the first
#   visit of the trailing run of missing post-baseline values (monotone dropout); no ICE if the last
#   post-baseline visit is observed. Missing values before the ICE (intermittent) are imputed under
#   MAR, as rbmi does for every visit before the ICE. data_ice = one row per participant with an
#   ICE: participant, ICE visit, strategy.
# - With a codebook key `ice` (table: a CSV relative to the codebook; columns: {participant, visit,
#   strategy} naming its columns; one row per participant; visit a post-baseline visit; strategy MAR,
#   JR, CR or CIR; cells trimmed; every listed participant a randomised one of the trial table;
#   those outside the analysed set, e.g. without a baseline value, are skipped): only the listed participants have an ICE, at the listed visit;
#   every other missing value (unlisted participants, and listed ones before their ICE visit) is MAR.
#   data_ice = the table's rows. rbmi then (draws.R get_mmrm_sample -> longData$get_data(mnar.rm =
#   TRUE), is_mar = visit < ICE visit for a non-MAR strategy, all TRUE for MAR) leaves every value at
#   or after the ICE visit of a participant with a non-MAR strategy out of the imputation model fit
#   (full data and every jackknife fit; observed ones included), and keeps them under MAR. Such
#   observed post-ICE values are NOT imputed: impute() conditions on the participant's original
#   outcomes (longData$values), so they stay as observed in the completed data and in the
#   analysis, and enter the conditional mean of the participant's missing values with the
#   strategy's mean vector (see "rbmi's strategies"). A participant with nothing missing is not
#   imputed at all; its post-ICE values only leave the fit.
# - Strategies: the whole procedure (draws, impute, analyse, pool) once for each of MAR, JR, CR,
#   CIR; the strategy applies to every participant with an ICE in both arms; references =
#   c(control = control, intervention = control) (the control arm imputes under MAR whatever the
#   strategy, but a non-MAR strategy still takes its post-ICE values out of the fit). With an ICE
#   table, also once with each listed participant's own strategy (data_ice strategy column from
#   the table), rows with strategy "ICE table".
# - Analysis: rbmi::ancova at every post-baseline visit, outcome ~ arm + <baseline> + <covariates>
#   (lm), weights = "counterfactual" (rbmi's default; lsm = mean over that visit's rows of the
#   design row with arm fixed to ref/alt); trt = the arm coefficient (intervention - control),
#   lsm_ref = control, lsm_alt = intervention. pool(): jackknife pooling, point = full-data
#   estimate, se = sqrt((n-1)/n * sum((est_-i - mean(est_-i))^2)), normal 95% CI and two-sided p.
# - Delta adjustment: delta_template(), delta = delta_value for every missing (imputed) value of the
#   intervention arm (is_missing, any post-baseline visit, including intermittent ones; observed
#   post-ICE values have is_missing = FALSE, is_post_ice = TRUE, so they never get a delta), 0
#   otherwise; analyse(..., delta = ) adds it after imputation in the full-data and in every
#   jackknife sample. delta_value in 0, 1, 2, 3, 4, 5, 6, 8, 10 outcome units under MAR, 2 and 5
#   under JR, CR, CIR, 0, 2 and 5 for the ICE table; rows with strategy "<strategy>+delta".
# - rbmi's strategies (strategies.R, impute.R), per participant with an ICE: mean vectors over the
#   post-baseline visits from the participant's own design row with its own arm (mu_own) and with
#   arm = control (mu_ref, arm:visit terms included); MAR: mu_own; JR: mu_own before the ICE,
#   mu_ref from it; CR: mu_ref at every visit (also before the ICE); CIR: mu_own before the ICE,
#   mu_own[last pre-ICE visit] + mu_ref[j] - mu_ref[last pre-ICE visit] from it; JR and CIR
#   with the ICE at the first post-baseline visit = mu_ref throughout (= CR). same_cov = TRUE keeps
#   one Sigma for every strategy. Imputed = mu_m + Sigma_mo Sigma_oo^-1 (y_o - mu_o), unbounded
#   (y_o: every observed value, post-ICE ones included).
# - <case>.csv columns: strategy, delta (empty except for "+delta" rows), visit, quantity (estimate, se,
#   ci_low, ci_high, p for trt; lsm_ref, lsm_ref_se, lsm_alt, lsm_alt_se from the same pooling),
#   value (%.17g).
# - <case>_imputed.csv: per strategy the full-data conditional-mean completed data (the first
#   "imputation", from the fit to all participants): strategy, participant, visit, value, imputed.

suppressPackageStartupMessages({
  library(yaml)
  library(rbmi)
})

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

all_args <- commandArgs(trailingOnly = TRUE)
stock <- "--stock" %in% all_args
args <- setdiff(all_args, "--stock")
cb_path <- args[1]
out_dir <- args[2]

io <- read_codebook_table(cb_path)
cb <- io$cb
tab <- io$tab

case <- basename(dirname(normalizePath(cb_path)))
stem <- tools::file_path_sans_ext(basename(cb_path))
if (stem != "dataset") case <- paste0(case, "_", sub("^dataset_", "", stem))
key <- if (length(args) > 2) args[3] else names(cb$outcomes)[vapply(cb$outcomes, function(o) identical(o$transform, "none"), logical(1))][1]
spec <- cb$outcomes[[key]]
column <- if (is.null(spec$column)) key else spec$column
visits <- unlist(cb$visits)
post <- visits[-1]
ctl <- cb$arms$control
itv <- cb$arms$intervention
covs <- unlist(cb$covariates)
base_name <- paste0(key, "_", visits[1])

# ---- data -------------------------------------------------------------------------------------
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
first_nonmissing <- function(v) {
  vapply(ids, function(i) {
    x <- v[raw$participant == i & !is.na(v)]
    if (length(x)) x[1] else NA
  }, v[1], USE.NAMES = FALSE)
}
for (cv in covs) pt[[cv]] <- first_nonmissing(raw[[cv]])
bl <- raw[raw$visit == visits[1], ]
pt[[base_name]] <- bl$y[match(ids, bl$participant)]
pt <- pt[complete.cases(pt[, c(base_name, covs)]), ]
for (cv in covs) {
  num <- suppressWarnings(as.numeric(pt[[cv]]))
  pt[[cv]] <- if (all(!is.na(num))) num else factor(pt[[cv]])
}

long <- merge(expand.grid(participant = pt$participant, visit = post, stringsAsFactors = FALSE),
              raw[raw$visit %in% post, c("participant", "visit", "y")], all.x = TRUE)
long <- merge(long, pt, by = "participant")
long$participant <- factor(long$participant, levels = sort(pt$participant))
long$visit <- factor(long$visit, levels = post)
long$arm <- factor(long$arm, levels = c(ctl, itv))
long <- long[order(long$participant, long$visit), ]
rownames(long) <- NULL
names(long)[names(long) == "y"] <- key
if (length(post) == 1) {
  # one post-baseline visit: a zero-column contrast lets model.matrix drop visit (and arm:visit)
  # (set as an attribute: `contrasts<-` refuses one-level factors; `[.factor` keeps it)
  attr(long$visit, "contrasts") <- matrix(numeric(0), 1, 0, dimnames = list(post, NULL))
}

# ---- intercurrent events ----------------------------------------------------------------------
if (is.null(cb$ice)) {
  ice_of <- function(y) {
    obs <- which(!is.na(y))
    last <- if (length(obs)) max(obs) else 0
    if (last == length(y)) NA_integer_ else last + 1L
  }
  ice_idx <- tapply(long[[key]], long$participant, ice_of)
  ice_ids <- names(ice_idx)[!is.na(ice_idx)]
  ice_base <- data.frame(participant = factor(ice_ids, levels = levels(long$participant)),
                         visit = post[ice_idx[ice_ids]], stringsAsFactors = FALSE)
} else {
  # the codebook's ICE table: its participants only, at its visit, with its strategy
  it <- read_ice_table(cb, cb_path, raw$participant, post)
  it <- it[it$participant %in% pt$participant, ]
  it <- it[order(it$participant), ]
  ice_base <- data.frame(participant = factor(it$participant, levels = levels(long$participant)),
                         visit = it$visit, stringsAsFactors = FALSE)
  ice_own <- it$own
}

# ---- rbmi -------------------------------------------------------------------------------------
# rbmi calls mmrm::mmrm with mmrm's default optimiser settings, which stop ~1e-4 short of the REML
# optimum on BtheB (estimates off by ~1e-4). Unless --stock is given, rbmi's fit_mmrm is patched
# so that this one call is replaced by the same fit pushed to its tolerance floor (L-BFGS-B with
# factr = 1e-4, pgtol = 0, then restarts from its own optimum with L-BFGS-B and with nlminb on
# TMB's exact Hessian while the REML criterion still improves; as mmrm_reference.R). Everything
# else in rbmi is untouched; the references then carry the exact REML optimum.
tight_mmrm <- function(formula, data, reml, n_cores, accept_singular) {
  fit_from <- function(start, optimizers) {
    ctl <- if (is.null(optimizers)) {
      mmrm::mmrm_control(n_cores = n_cores, accept_singular = accept_singular, start = start,
                         optimizer_control = list(factr = 1e-4, pgtol = 0, maxit = 1e4))
    } else {
      mmrm::mmrm_control(n_cores = n_cores, accept_singular = accept_singular, start = start,
                         optimizers = optimizers)
    }
    tryCatch(mmrm::mmrm(formula = formula, data = data, reml = reml, control = ctl),
             error = function(e) NULL)
  }
  best <- fit_from(mmrm::std_start, NULL)
  if (is.null(best)) return(mmrm::mmrm(formula = formula, data = data, reml = reml, n_cores = n_cores,
                                       accept_singular = accept_singular))
  newton <- mmrm:::h_get_optimizers("nlminb", optimizer_control = list(rel.tol = 1e-14, iter.max = 1000,
                                                                      eval.max = 2000))
  for (round in 1:10) {
    gain <- 0
    for (opt in list(NULL, newton)) {
      cand <- fit_from(mmrm::component(best, "theta_est"), opt)
      if (!is.null(cand) && isTRUE(attr(cand, "converged")) &&
          as.numeric(logLik(cand)) > as.numeric(logLik(best))) {
        gain <- gain + as.numeric(logLik(cand)) - as.numeric(logLik(best))
        best <- cand
      }
    }
    if (gain < 1e-11) break
  }
  best
}
if (!stock) {
  patched <- rbmi:::fit_mmrm
  body(patched) <- parse(text = gsub("mmrm::mmrm(", "tight_mmrm(", paste(deparse(body(patched)), collapse = "\n"),
                                     fixed = TRUE))[[1]]
  stopifnot(any(grepl("tight_mmrm(", deparse(body(patched)), fixed = TRUE)))
  env <- new.env(parent = asNamespace("rbmi"))
  env$tight_mmrm <- tight_mmrm
  environment(patched) <- env
  assignInNamespace("fit_mmrm", patched, "rbmi")
}

# baseline x visit and arm x visit, as the issue (and rbmi's own examples) specify the imputation model
imp_covs <- c(base_name, covs, if (length(post) > 1) c(paste0(base_name, ":visit"), "arm:visit"))
vars <- set_vars(subjid = "participant", visit = "visit", outcome = key, group = "arm",
                 covariates = imp_covs, strategy = "strategy")
vars_an <- set_vars(subjid = "participant", visit = "visit", outcome = key, group = "arm",
                    covariates = c(base_name, covs))
method <- method_condmean(type = "jackknife", covariance = "us", REML = TRUE, same_cov = TRUE)
refs <- setNames(c(ctl, ctl), c(ctl, itv))
weights <- "counterfactual"

# model.matrix warns "no columns are assigned" for the zero-column visit term (one-visit case only)
quiet_visit <- function(expr) {
  withCallingHandlers(expr, warning = function(w) {
    if (grepl("no columns are assigned", conditionMessage(w))) invokeRestart("muffleWarning")
  })
}

rows <- list()
add_pool <- function(pl, strategy, delta = NA) {
  for (v in post) {
    tr <- pl$pars[[paste0("trt_", v)]]
    lr <- pl$pars[[paste0("lsm_ref_", v)]]
    la <- pl$pars[[paste0("lsm_alt_", v)]]
    q <- c(estimate = tr$est, se = tr$se, ci_low = tr$ci[[1]], ci_high = tr$ci[[2]], p = tr$pvalue,
           lsm_ref = lr$est, lsm_ref_se = lr$se, lsm_alt = la$est, lsm_alt_se = la$se)
    rows[[length(rows) + 1]] <<- data.frame(strategy = strategy, delta = delta, visit = v,
                                            quantity = names(q), value = unname(q), stringsAsFactors = FALSE)
  }
}
imputed <- list()

for (strategy in c("MAR", "JR", "CR", "CIR", if (!is.null(cb$ice)) "ICE table")) {
  data_ice <- ice_base
  data_ice$strategy <- if (strategy == "ICE table") ice_own else rep(strategy, nrow(data_ice))
  dr <- quiet_visit(draws(data = long, data_ice = data_ice, vars = vars, method = method, quiet = TRUE))
  if (strategy == "MAR") {
    cat("rbmi imputation model:", deparse(dr$formula, width.cutoff = 500), "\n")
  }
  imp <- quiet_visit(impute(dr, references = refs))
  an <- analyse(imp, ancova, vars = vars_an, weights = weights)
  add_pool(pool(an), strategy)

  full <- extract_imputed_dfs(imp, index = 1, idmap = TRUE)[[1]]
  idmap <- attr(full, "idmap")
  full$participant <- unname(idmap[as.character(full$participant)])
  key_rows <- paste(long$participant, long$visit)
  was_na <- is.na(long[[key]])[match(paste(full$participant, full$visit), key_rows)]
  imputed[[strategy]] <- data.frame(strategy = strategy, participant = full$participant,
                                    visit = as.character(full$visit), value = full[[key]],
                                    imputed = was_na, stringsAsFactors = FALSE)

  # delta on the intervention arm's imputed values: a scan under MAR, 0, 2, 5 for the ICE table, 2 and 5
  # under JR, CR, CIR
  tmpl <- delta_template(imp)
  for (d in switch(strategy, MAR = c(0, 1, 2, 3, 4, 5, 6, 8, 10), "ICE table" = c(0, 2, 5), c(2, 5))) {
    dd <- tmpl
    dd$delta <- (dd$arm == itv) * dd$is_missing * d
    an_d <- analyse(imp, ancova, delta = dd[, c("participant", "visit", "delta")], vars = vars_an,
                    weights = weights)
    add_pool(pool(an_d), paste0(strategy, "+delta"), d)
  }
}

# ---- write ------------------------------------------------------------------------------------
fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
res <- do.call(rbind, rows)
res$delta <- fmt(res$delta)
res$value <- fmt(res$value)
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
write.csv(res, file.path(out_dir, paste0(case, ".csv")), row.names = FALSE,
          quote = match(c("strategy", "visit", "quantity"), names(res)))
imp_all <- do.call(rbind, imputed)
imp_all$value <- fmt(imp_all$value)
write.csv(imp_all, file.path(out_dir, paste0(case, "_imputed.csv")), row.names = FALSE,
          quote = match(c("strategy", "participant", "visit"), names(imp_all)))
cat(sprintf("%s: outcome %s, %d participants (%d with an ICE), %d result rows\n", case, key,
            nrow(pt), nrow(ice_base), nrow(res)))
