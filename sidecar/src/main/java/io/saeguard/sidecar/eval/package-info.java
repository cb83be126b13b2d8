/**
 * {@code saeguard eval}: labelled texts through a config's prompt model, SAE and detectors (a check-only engine,
 * {@link io.saeguard.sidecar.pipeline.CheckEngine}), scored per detector
 * ({@link io.saeguard.detectors.eval.DetectionMetrics}) into a JSON report, a Markdown report and a per-text scores
 * file.
 */
package io.saeguard.sidecar.eval;
