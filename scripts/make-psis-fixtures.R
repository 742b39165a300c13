#!/usr/bin/env Rscript
# Reference values for libbsvi's importance-weight diagnostics (include/bsvi/diagnostics.h),
# read by tests/test_diagnostics.c, which needs no R.
#
#   Rscript scripts/make-psis-fixtures.R [OUTDIR]     # from the repository root
#
# OUTDIR defaults to tests/fixtures/psis. Needs R and the loo package (Debian: apt-get install
# r-cran-loo). Writes:
#   log_weights.csv  set,log_w          the inputs, one log weight a row, in set order
#   expected.csv     set,name,S,tail_len,pareto_k,ess,loo_n_eff
#                    pareto_k = loo::psis(log_w, r_eff = 1)$diagnostics$pareto_k,
#                    ess = (sum w)^2 / sum w^2 of the raw weights (by the formula, in log
#                    space: loo reports no ESS of the raw weights), loo_n_eff = loo's n_eff
#                    of its smoothed weights (for reference only; libbsvi does not compute it).
#   README.md        how the files were made.
# The log weights are rounded to 12 significant digits, written, and read back before loo
# sees them, so that loo and the C test start from the same decimal strings.

suppressPackageStartupMessages(library(loo))

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[1] else file.path("tests", "fixtures", "psis")
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20190416)

sets <- list()
add <- function(name, lw) sets[[length(sets) + 1]] <<- list(name = name, lw = lw)

# Pareto weights with tail index xi: w = exp(xi * E), E ~ Exp(1), so P(w > t) = t^(-1/xi).
for (xi in c(0.2, 0.5, 0.8, 1.0, 1.5)) add(sprintf("pareto_xi%.1f", xi), xi * rexp(800))
# Log-normal weights.
for (s in c(0.3, 1, 2, 4)) add(sprintf("lognormal_sd%g", s), s * rnorm(500))
# Bounded weights (uniform on (0, 1)): a light tail, k-hat near -1.
add("uniform", log(runif(500)))
# Importance sampling of N(0, 1) from N(0.5, 0.6^2), and of a Student t3 from N(0, 1).
z <- rnorm(1000, 0.5, 0.6)
add("is_normal_narrow", dnorm(z, 0, 1, log = TRUE) - dnorm(z, 0.5, 0.6, log = TRUE))
z <- rnorm(1000)
add("is_t3_from_normal", dt(z, 3, log = TRUE) - dnorm(z, log = TRUE))
# Small sample sizes around loo's minimum tail of 5 (S = 21).
for (S in c(5, 20, 21, 30, 50, 100)) add(sprintf("small_S%d", S), 1.5 * rnorm(S))
# Ties: log weights on a grid of 0.05 (ties in the tail), and of 0.5 (so many ties at the
# threshold that the first quartile of the exceedances is 0: the fit breaks down, Inf).
add("ties_fine", round(20 * rnorm(400)) / 20)
add("ties_grid", round(2 * rnorm(300)) / 2)
# Every tail value equal: loo cannot fit (pareto_k Inf, with a warning).
add("tail_all_equal", c(rnorm(60) - 5, rep(2, 40)))
# Ties at the threshold: most exceedances are 0, the fit breaks down (pareto_k Inf).
add("ties_at_threshold", c(rnorm(70), rep(3, 10), rep(2.5, 30)))
# Large offsets (the computation shifts by the largest log weight).
add("offset_plus_1e4", 1e4 + 0.7 * rexp(400))
add("offset_minus_1e4", -1e4 + 2 * rnorm(400))
# An IWAE-S-like set: S = 3000 log-normal weights.
add("lognormal_S3000", 1.2 * rnorm(3000))
# A huge dynamic range: one weight dominates.
add("dominant", 50 * rnorm(200))

# Round, write and read back the inputs.
ids <- rep(seq_along(sets), vapply(sets, function(s) length(s$lw), 0L))
vals <- unlist(lapply(sets, function(s) s$lw))
txt <- sprintf("%.12g", vals)
lw_file <- file.path(outdir, "log_weights.csv")
writeLines(c("set,log_w", paste0(ids, ",", txt)), lw_file)
back <- read.csv(lw_file, colClasses = c("integer", "numeric"))

rows <- lapply(seq_along(sets), function(i) {
  lw <- back$log_w[back$set == i]
  S <- length(lw)
  p <- withCallingHandlers(psis(lw, r_eff = 1), warning = function(w) {
    message(sprintf("set %d (%s): loo warns: %s", i, sets[[i]]$name, conditionMessage(w)))
    invokeRestart("muffleWarning")
  })
  m <- max(lw)
  e <- exp(lw - m)
  data.frame(set = i, name = sets[[i]]$name, S = S,
             tail_len = ceiling(min(0.2 * S, 3 * sqrt(S))),
             pareto_k = p$diagnostics$pareto_k,
             ess = exp(2 * log(sum(e)) - log(sum(e^2))),
             loo_n_eff = p$diagnostics$n_eff)
})
tab <- do.call(rbind, rows)
fmt <- function(x) ifelse(is.finite(x), sprintf("%.17g", x), ifelse(x > 0, "Inf", "-Inf"))
out <- data.frame(set = tab$set, name = tab$name, S = tab$S, tail_len = tab$tail_len,
                  pareto_k = fmt(tab$pareto_k), ess = fmt(tab$ess),
                  loo_n_eff = fmt(tab$loo_n_eff))
write.csv(out, file.path(outdir, "expected.csv"), row.names = FALSE, quote = FALSE)
print(out, right = FALSE)

writeLines(c(
  "# PSIS reference values (tests/test_diagnostics.c)",
  "",
  sprintf(paste("Made with `Rscript scripts/make-psis-fixtures.R` from the repository root",
                "(loo %s, matrixStats %s, %s): inputs in log_weights.csv, loo::psis(log_w,",
                "r_eff = 1) pareto_k and the raw-weight ESS in expected.csv; see the script's",
                "header."),
          as.character(packageVersion("loo")), as.character(packageVersion("matrixStats")),
          R.version.string)),
  file.path(outdir, "README.md"))
