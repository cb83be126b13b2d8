package io.saeguard.sae.train;

/**
 * How well an SAE reconstructs a set of rows.
 *
 * @param rows        rows measured
 * @param fvu         fraction of variance unexplained: {@code Σ‖x − x̂‖² / Σ‖x − mean(x)‖²}, the mean
 *                    taken over all measured rows (sparsify's definition, over the whole set rather
 *                    than per batch)
 * @param l0          mean number of non-zero codes per row
 * @param deadLatents latents that never fired on these rows
 */
public record ReconstructionQuality(long rows, double fvu, double l0, int deadLatents) {
}
