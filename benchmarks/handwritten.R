# Hand-written re-analysis of a two-arm trial, as a biostatistician would write it today in R.
#
# Mirrors what the pnitrial pipeline does for each outcome of a codebook (lmm, clda and ancova
# estimands plus the permutation test of the cLDA intervention effect), so that benchmarks can
# time "by hand" against the pipeline:
#   lmm    : lmer(y ~ arm * visit + (1 | participant), REML), arm x visit with Kenward-Roger df,
#            emmeans of arm within visit (KR df) and their pairwise differences
#   clda   : lmer(y ~ visit + arm:later visit + (1 | participant)), no arm effect at baseline, KR df
#   ancova : lm(y_last ~ arm + y_baseline) on participants seen at both visits
#   perm   : arm labels re-randomised across participants (arm sizes kept), cLDA refitted each time,
#            p = (1 + #{|t_b| >= |t_obs|}) / (B + 1) with the Wald t of lme4
#
# Usage: Rscript benchmarks/handwritten.R <codebook.yaml> <n_permutations> <seed>
# Prints one line at the end: TIMING total_seconds=<x> permutation_seconds=<y> outcomes=<k>
# (elapsed seconds from after the packages are loaded; the permutation part is included in the total)

options(width = 200)
suppressPackageStartupMessages({
  library(yaml)
  library(lme4)
  library(lmerTest)
  library(emmeans)
  library(pbkrtest)
})
t_start <- proc.time()[["elapsed"]]                                # after loading the packages

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript handwritten.R <codebook.yaml> <n_permutations> <seed>")
cb <- yaml::read_yaml(args[1])
B <- as.integer(args[2])
seed <- as.integer(args[3])

# ---- data ------------------------------------------------------------------------------------
# Everything is read as text: cells below the limit of detection are written '<4.68', missing
# values are empty cells.
raw <- read.csv(file.path(dirname(args[1]), cb$table), colClasses = "character", na.strings = c("", "NA"))
col <- cb$columns
visits <- unlist(cb$visits)
arm_i <- cb$arms$intervention
arm_c <- cb$arms$control
d <- raw[raw[[col$arm]] %in% c(arm_i, arm_c), ]                    # randomised arms only
d$participant <- factor(d[[col$participant]])
d$arm <- factor(d[[col$arm]], levels = c(arm_c, arm_i))             # control is the reference
d$visit <- factor(d[[col$visit]], levels = visits)                  # first visit is baseline
later <- visits[-1]
for (v in later) d[[paste0("tx_", v)]] <- as.numeric(d$arm == arm_i & d$visit == v)  # cLDA arm terms

# '<x' (below the limit of detection) -> x/2; anything else non-numeric -> NA
to_number <- function(s) {
  s <- trimws(s)
  cens <- !is.na(s) & startsWith(s, "<")
  out <- suppressWarnings(as.numeric(ifelse(cens, substring(s, 2), s)))
  out[cens] <- out[cens] / 2
  out
}

pick <- function(tab, row, column) if (row %in% rownames(tab)) tab[row, column] else NA_real_

# ---- analyses, one outcome at a time --------------------------------------------------------
results <- list()
perm_seconds <- 0
set.seed(seed)
for (key in names(cb$outcomes)) {
  o <- cb$outcomes[[key]]
  d$y <- to_number(d[[key]])
  if (identical(o$transform, "log")) d$y <- log(d$y)
  dd <- droplevels(d[!is.na(d$y), ])
  last <- tail(visits, 1)
  term <- paste0("arm", arm_i, ":visit", last)

  # lmm: arm x visit, KR df, emmeans of arm within visit
  m_lmm <- lmerTest::lmer(y ~ arm * visit + (1 | participant), data = dd, REML = TRUE)
  co <- summary(m_lmm, ddf = "Kenward-Roger")$coefficients
  emm <- emmeans(m_lmm, ~ arm | visit, lmer.df = "kenward-roger")
  prs <- summary(pairs(emm, reverse = TRUE))                        # intervention - control per visit

  # clda: visit + arm at later visits only, KR df
  f_clda <- reformulate(c("visit", paste0("tx_", later), "(1 | participant)"), response = "y")
  m_clda <- lmerTest::lmer(f_clda, data = dd, REML = TRUE)
  cc <- summary(m_clda, ddf = "Kenward-Roger")$coefficients
  tx <- paste0("tx_", last)

  # ancova at the last visit
  w <- reshape(dd[, c("participant", "arm", "visit", "y")], idvar = c("participant", "arm"),
               timevar = "visit", direction = "wide")
  names(w)[names(w) == paste0("y.", visits[1])] <- "y_pre"
  names(w)[names(w) == paste0("y.", last)] <- "y_post"
  ca <- summary(lm(y_post ~ arm + y_pre, data = w))$coefficients
  a_term <- paste0("arm", arm_i)

  # permutation test of the cLDA effect: re-randomise arms across participants, refit
  t_perm <- proc.time()[["elapsed"]]
  t_obs <- summary(m_clda, ddf = "lme4")$coefficients[tx, "t value"]
  ids <- levels(dd$participant)
  arm_of <- tapply(as.character(dd$arm), dd$participant, `[`, 1)[ids]
  t_b <- numeric(B)
  for (b in seq_len(B)) {
    arm_b <- setNames(sample(arm_of), ids)                           # keeps the arm sizes
    db <- dd
    is_i <- arm_b[as.character(db$participant)] == arm_i
    for (v in later) db[[paste0("tx_", v)]] <- as.numeric(is_i & db$visit == v)
    fb <- lme4::lmer(f_clda, data = db, REML = TRUE)
    t_b[b] <- coef(summary(fb))[tx, "t value"]
  }
  p_perm <- (1 + sum(abs(t_b) >= abs(t_obs))) / (B + 1)
  perm_seconds <- perm_seconds + proc.time()[["elapsed"]] - t_perm

  results[[key]] <- data.frame(
    outcome = key, n = nrow(dd),
    lmm_est = pick(co, term, "Estimate"), lmm_se = pick(co, term, "Std. Error"),
    lmm_df = pick(co, term, "df"), lmm_p = pick(co, term, "Pr(>|t|)"),
    lmm_diff_last = prs$estimate[prs$visit == last],
    clda_est = pick(cc, tx, "Estimate"), clda_df = pick(cc, tx, "df"), clda_p = pick(cc, tx, "Pr(>|t|)"),
    ancova_est = pick(ca, a_term, "Estimate"), ancova_p = pick(ca, a_term, "Pr(>|t|)"),
    p_perm = p_perm
  )
}

out <- do.call(rbind, results)
rownames(out) <- NULL
print(format(out, digits = 4), row.names = FALSE)
total <- proc.time()[["elapsed"]] - t_start
cat(sprintf("TIMING total_seconds=%.3f permutation_seconds=%.3f outcomes=%d\n", total, perm_seconds, nrow(out)))
