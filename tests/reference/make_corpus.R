# Export a corpus of real two-arm longitudinal studies from R packages that Debian ships, in
# pnitrial's long format (one row per participant x visit), as reference cases for R parity.
# Usage: Rscript tests/reference/make_corpus.R OUTDIR   (writes OUTDIR/<name>_trial.csv)
# Then copy each file to tests/reference/cases/<name>/trial.csv. Deterministic: the same R
# packages give the same bytes (CI re-exports into a temporary directory and compares).
#
#   chickweight  datasets::ChickWeight (R, GPL-2 | GPL-3)  diet 1 vs 2, 12 visits, deaths
#   bodyweight   nlme::BodyWeight (GPL >= 2)               diet 1 vs 2 (4 rats), 11 visits
#   milk         nlme::Milk (GPL >= 2)                     barley vs lupins, 19 weeks, gaps
#   dietox       geepack::dietox (GPL >= 3)                copper 0 vs 175, 12 weeks, vitamin E
#   fdd          mice::fdd (GPL >= 2)                      CBT vs EMDR, 3 visits, gaps
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript tests/reference/make_corpus.R OUTDIR")
outdir <- args[1]
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

write_trial <- function(d, name) {
  path <- file.path(outdir, paste0(name, "_trial.csv"))
  write.csv(d, path, row.names = FALSE, quote = FALSE, na = "")
  cat(sprintf("wrote %d rows (%d participants) to %s\n", nrow(d), length(unique(d$participant)), path))
}

# A grouped long table (one row per measurement) subset to two arms, ordered by participant and time.
# id_label turns the source's identifier (as text) into the participant label.
long_two_arms <- function(d, id, arm, time, value, arms, id_label, visit_fmt, outcome, digits = NA) {
  d <- as.data.frame(d)
  d <- d[as.character(d[[arm]]) %in% names(arms) & !is.na(d[[value]]), ]
  out <- data.frame(
    participant = id_label(as.character(d[[id]])),
    arm = unname(arms[as.character(d[[arm]])]),
    visit = sprintf(visit_fmt, d[[time]]),
    stringsAsFactors = FALSE
  )
  out[[outcome]] <- if (is.na(digits)) d[[value]] else round(d[[value]], digits)
  list(out = out, time = d[[time]])
}

order_rows <- function(out, time) out[order(out$participant, time, method = "radix"), , drop = FALSE]

# ChickWeight: body weight (g, integers) at birth and every second day to day 20, and day 21.
# Chicks that died stop early (monotone dropout). Diet 1 (20 chicks) vs diet 2 (10 chicks).
data("ChickWeight", package = "datasets")
x <- long_two_arms(ChickWeight, "Chick", "Diet", "Time", "weight", c("1" = "diet1", "2" = "diet2"),
                   function(i) sprintf("chick%02d", as.integer(i)), "d%02d", "weight")
write_trial(order_rows(x$out, x$time), "chickweight")

# BodyWeight: rat body weight (g, integers) on day 1, weekly to day 64, and day 44.
# Diet 1 (8 rats) vs diet 2 (4 rats); complete data.
data("BodyWeight", package = "nlme")
x <- long_two_arms(BodyWeight, "Rat", "Diet", "Time", "weight", c("1" = "diet1", "2" = "diet2"),
                   function(i) sprintf("rat%02d", as.integer(i)), "d%02d", "weight")
write_trial(order_rows(x$out, x$time), "bodyweight")

# Milk: protein content (%) of milk weekly for 19 weeks after calving. Barley (25 cows) vs
# lupins (27 cows); cows leave the study when they dry off (monotone) and some weeks are missing
# in between (intermittent).
data("Milk", package = "nlme")
x <- long_two_arms(Milk, "Cow", "Diet", "Time", "protein", c(barley = "barley", lupins = "lupins"),
                   identity, "w%02d", "protein")
write_trial(order_rows(x$out, x$time), "milk")

# dietox: pig weight (kg, recorded to 0.1 kg; stored in the package in single precision, so rounded
# back to 0.1) weekly for 12 weeks in a 3 x 3 factorial of copper and vitamin E in the feed.
# Copper 0 (23 pigs) vs copper 175 mg/kg (24 pigs); the vitamin E dose (randomised factor,
# three levels) is a categorical covariate. Three pigs have no week-12 weight (monotone dropout).
data("dietox", package = "geepack")
x <- long_two_arms(dietox, "Pig", "Cu", "Time", "Weight", c(Cu000 = "Cu000", Cu175 = "Cu175"),
                   function(i) paste0("pig", i), "w%02d", "weight", digits = 1)
evit <- setNames(as.character(dietox$Evit), paste0("pig", dietox$Pig))
out <- x$out
out <- data.frame(out[c("participant", "arm", "visit")], evit = unname(evit[out$participant]), weight = out$weight)
write_trial(order_rows(out, x$time), "dietox")

# fdd: Fireworks disaster trial, children randomised to EMDR (26) or CBT (26). PTSD-RI total as
# rated by the parent (yp) and by the child (yc) at T1 (pre), T2 (post, 4-8 weeks) and T3
# (3-month follow-up). Every randomised child has a T1 row (sex and age are recorded), even when
# no score was obtained; a later row exists when either score was obtained there. Missing scores
# stay empty: dropout and intermittent (T1 and T3 but not T2) patterns, as in the trial.
data("fdd", package = "mice")
rows <- list()
for (i in order(fdd$id)) {
  for (t in 1:3) {
    yp <- fdd[[paste0("yp", t)]][i]
    yc <- fdd[[paste0("yc", t)]][i]
    if (t > 1 && is.na(yp) && is.na(yc)) next
    rows[[length(rows) + 1]] <- data.frame(
      participant = sprintf("F%03d", fdd$id[i]),
      arm = c(E = "EMDR", C = "CBT")[[as.character(fdd$trt[i])]],
      visit = paste0("T", t), sex = as.character(fdd$sex[i]), age = fdd$age[i], yp = yp, yc = yc)
  }
}
write_trial(do.call(rbind, rows), "fdd")
