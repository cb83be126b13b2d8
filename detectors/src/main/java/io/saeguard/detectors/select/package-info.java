/**
 * Feature selection, the library behind {@code saeguard select} (docs/algorithms.md#feature-selection): per-feature
 * statistics on labelled sets, DSG importance (docs/algorithms.md#dsg-importance) or mean-difference ranking, LangFIR
 * random-token filtering (§6), a ready {@code features} or {@code dsg} detector, held-out evaluation
 * against an L2 logistic-regression raw-probe baseline (§8), and a Markdown report.
 */
package io.saeguard.detectors.select;
