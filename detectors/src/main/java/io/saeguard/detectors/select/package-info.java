/**
 * Feature selection, the library behind {@code saeguard select} (design.md §5): per-feature
 * statistics on labelled sets, DSG importance (algorithms.md §1.1) or mean-difference ranking, LangFIR
 * random-token filtering (§6), a ready {@code features} or {@code dsg} detector, held-out evaluation
 * against an L2 logistic-regression raw-probe baseline (§8), and a Markdown report.
 */
package io.saeguard.detectors.select;
