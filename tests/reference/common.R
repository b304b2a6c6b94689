# Shared by the reference scripts: read cells as pnitrial's codebook says.

# A codebook and its table, every cell as text (pnitrial parses them itself).
read_codebook_table <- function(cb_path) {
  cb <- yaml::read_yaml(cb_path)
  tab <- read.csv(file.path(dirname(cb_path), cb$table), colClasses = "character",
                  na.strings = character(0), check.names = FALSE)
  list(cb = cb, tab = tab)
}

# lme4's optimiser pushed to its tolerance floor, so references carry more digits than the tests ask.
tight_control <- function() {
  lme4::lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14,
                                   xtol_rel = 1e-12, ftol_rel = 1e-14, maxeval = 1e5))
}

missing_cell <- function(x) x %in% c("", "NA", "N/A", "NaN", "nan", ".")

parse_outcome <- function(cells, spec) {
  cells <- trimws(cells)
  out <- rep(NA_real_, length(cells))
  below <- grepl("^<", cells)
  lodtxt <- trimws(sub("^<", "", cells[below]))
  lod <- ifelse(toupper(lodtxt) == "LOD", spec$lod, suppressWarnings(as.numeric(lodtxt)))
  out[below] <- lod / sqrt(2)
  ok <- !below & !missing_cell(cells)
  out[ok] <- as.numeric(cells[ok])
  if (!is.null(spec$lod) && spec$transform == "log") {
    zero <- !is.na(out) & out == 0
    out[zero] <- spec$lod / sqrt(2)
  }
  if (spec$transform == "log") out <- log(out)
  out
}


# The trial rows of a codebook's table with the cLDA columns (trt_<visit>: intervention after
# baseline), the cLDA formula with a random intercept, and the tight lme4 optimiser settings.
clda_setup <- function(cb, tab) {
  arm <- trimws(tab[[cb$columns$arm]])
  trial <- arm %in% c(cb$arms$intervention, cb$arms$control)
  d0 <- data.frame(participant = trimws(tab[[cb$columns$participant]]), arm = arm,
                   visit = factor(trimws(tab[[cb$columns$visit]]), levels = unlist(cb$visits)))
  covs <- unlist(cb$covariates)
  for (cv in covs) {
    x <- trimws(tab[[cv]])
    x[missing_cell(x)] <- NA
    num <- suppressWarnings(as.numeric(x))
    d0[[cv]] <- if (all(is.na(x) | !is.na(num))) num else factor(x)
  }
  d0 <- d0[trial, ]
  trt <- character(0)
  for (v in levels(d0$visit)[-1]) {
    nm <- paste0("trt_", v)
    d0[[nm]] <- as.numeric(d0$arm == cb$arms$intervention & d0$visit == v)
    trt <- c(trt, nm)
  }
  list(
    d0 = d0, trial = trial, covs = covs, trt = trt,
    f = as.formula(paste("y ~", paste(c("visit", covs, trt), collapse = " + "), "+ (1 | participant)")),
    ctl = tight_control()
  )
}

# The codebook's intercurrent-event table (key `ice`), checked as pnitrial checks it: participant,
# visit and strategy, one row per participant, known participants, post-baseline visits.
read_ice_table <- function(cb, cb_path, participants, post) {
  ice_cols <- cb$ice$columns
  it <- read.csv(file.path(dirname(cb_path), cb$ice$table), colClasses = "character",
                 na.strings = character(0), check.names = FALSE)
  it <- data.frame(participant = trimws(it[[ice_cols$participant]]), visit = trimws(it[[ice_cols$visit]]),
                   own = trimws(it[[ice_cols$strategy]]), stringsAsFactors = FALSE)
  stopifnot(!anyDuplicated(it$participant), all(it$participant %in% participants),
            all(it$visit %in% post), all(it$own %in% c("MAR", "JR", "CR", "CIR")))
  it
}
