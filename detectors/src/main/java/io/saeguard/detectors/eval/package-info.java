/**
 * Detection quality on labelled text, the arithmetic behind {@code saeguard eval}: AUROC from a detector's scores,
 * the true-positive rate at a target false-positive rate with the threshold taken from the negatives, precision and
 * recall at the detector's own policy, and a bootstrap interval for the AUROC (docs/algorithms.md#detection-quality).
 * Pure functions of arrays; no I/O.
 */
package io.saeguard.detectors.eval;
