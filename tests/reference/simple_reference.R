# Reference values from base R for pnitrial's simpler methods.
#
# Usage: Rscript tests/reference/simple_reference.R <codebook.yaml> <out.csv>
#
# p.adjust (BH, BY, Holm) on a fixed vector with ties and an NA; for every outcome,
# patients (both trial arms) minus healthy controls at baseline with Welch's
# t.test and Hedges' g with its normal-theory interval (Hedges & Olkin 1985).

suppressPackageStartupMessages(library(yaml))
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))), "common.R"))

args <- commandArgs(trailingOnly = TRUE)
io <- read_codebook_table(args[1])
cb <- io$cb
tab <- io$tab
rows <- list()
add <- function(outcome, quantity, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(outcome = outcome, quantity = quantity, name = name, value = value)
}

p <- c(0.01, 0.04, 0.04, 0.2, 0.003, NA, 0.5, 0.049, 0.9)
for (m in c("BH", "BY", "holm")) {
  adj <- p.adjust(p, method = m)
  for (i in seq_along(p)) add("", paste0("p_adjust_", tolower(m)), as.character(i), adj[i])
}

arm <- trimws(tab[[cb$columns$arm]])
base <- trimws(tab[[cb$columns$visit]]) == cb$visits[[1]]
patients <- base & arm %in% c(cb$arms$intervention, cb$arms$control)
healthy <- base & arm == cb$arms$healthy
for (key in names(cb$outcomes)) {
  spec <- cb$outcomes[[key]]
  column <- if (is.null(spec$column)) key else spec$column
  y <- parse_outcome(tab[[column]], spec)
  x1 <- y[patients & !is.na(y)]
  x2 <- y[healthy & !is.na(y)]
  tt <- t.test(x1, x2, var.equal = FALSE)
  add(key, "difference", "", unname(tt$estimate[1] - tt$estimate[2]))
  add(key, "ci_low", "", tt$conf.int[1])
  add(key, "ci_high", "", tt$conf.int[2])
  add(key, "t", "", unname(tt$statistic))
  add(key, "df", "", unname(tt$parameter))
  add(key, "p", "", tt$p.value)
  n1 <- length(x1); n2 <- length(x2)
  sp <- sqrt(((n1 - 1) * var(x1) + (n2 - 1) * var(x2)) / (n1 + n2 - 2))
  g <- (mean(x1) - mean(x2)) / sp * (1 - 3 / (4 * (n1 + n2) - 9))
  se <- sqrt((n1 + n2) / (n1 * n2) + g^2 / (2 * (n1 + n2)))
  add(key, "hedges_g", "", g)
  add(key, "g_ci_low", "", g - qnorm(0.975) * se)
  add(key, "g_ci_high", "", g + qnorm(0.975) * se)
}
res <- do.call(rbind, rows)
res$value <- signif(res$value, 12)
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("wrote %d reference values to %s\n", nrow(res), args[2]))
