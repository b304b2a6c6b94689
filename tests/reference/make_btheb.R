# Export the Beat-the-Blues trial (HSAUR3::BtheB, GPL-2) in pnitrial's long format.
# Usage: Rscript tests/reference/make_btheb.R tests/reference/cases/btheb/trial.csv
data("BtheB", package = "HSAUR3")
args <- commandArgs(trailingOnly = TRUE)
visits <- c(pre = "bdi.pre", m2 = "bdi.2m", m3 = "bdi.3m", m5 = "bdi.5m", m8 = "bdi.8m")
rows <- list()
for (i in seq_len(nrow(BtheB))) {
  for (v in names(visits)) {
    y <- BtheB[[visits[[v]]]][i]
    if (is.na(y)) next
    rows[[length(rows) + 1]] <- data.frame(
      participant = sprintf("B%03d", i), arm = as.character(BtheB$treatment[i]), visit = v,
      drug = as.character(BtheB$drug[i]), length = as.character(BtheB$length[i]), bdi = y)
  }
}
write.csv(do.call(rbind, rows), args[1], row.names = FALSE, quote = FALSE)
