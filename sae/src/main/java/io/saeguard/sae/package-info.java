/**
 * SAE runtime (docs/architecture.md#modules, docs/algorithms.md#sae-encoders): SAE file formats, encoders for every architecture, decode and
 * steering vectors, the DJL engine and device choice. Depends only on {@code saeguard-topics}.
 * The runtime arrives with the SAE runtime issue; this module fixes its place in the layering.
 */
package io.saeguard.sae;
