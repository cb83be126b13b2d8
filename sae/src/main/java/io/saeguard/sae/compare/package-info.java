/**
 * Comparing two SAEs' dictionaries ({@code saeguard compare-saes}): feature matching by decoder cosine
 * ({@link io.saeguard.sae.compare.DecoderMatching}) and by the correlation of the features' activations on the same
 * tokens ({@link io.saeguard.sae.compare.ActivationCorrelation}). Pure Java over arrays: the caller encodes (and measures
 * FVU with {@link io.saeguard.sae.train.ReconstructionStats}).
 */
package io.saeguard.sae.compare;
