# Shared by the reference scripts: read cells as pnitrial's codebook says.

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

