/**
 * Training TopK SAEs with DJL's autograd ({@code saeguard train}): {@link io.saeguard.sae.train.TopKTrainer},
 * its options and reports, and {@link io.saeguard.sae.train.ActivationSource}, where training rows
 * come from (activation files today; a text corpus run through a prompt model plugs in the same way).
 * Writing the result is {@link io.saeguard.sae.format.SaeWriter}'s job.
 */
package io.saeguard.sae.train;
